//! The fuzz target's entry (`fuzz/`): what `validate` and `plan` do with a file, on arbitrary
//! bytes, with nothing printed. Not an API.

/// Loads, validates and, when valid, plans and prints a runbook given as bytes, as
/// `validate` and `plan` would.
pub fn entry(bytes: &[u8]) {
    let Ok(source) = std::str::from_utf8(bytes) else {
        return;
    };
    let (runbook, mut problems) = crate::load::parse(source);
    let checked = runbook.map(|runbook| {
        let dag = crate::validate::validate(&runbook, source, &mut problems);
        (runbook, dag)
    });
    let report = crate::report::FileReport {
        path: "fuzz.yaml".to_owned(),
        source: source.to_owned(),
        problems,
        included_from: Vec::new(),
        included: Vec::new(),
    };
    let valid = report.errors() == 0;
    let reports = std::slice::from_ref(&report);
    drop((
        crate::report::human(reports, false),
        crate::report::json(reports),
        crate::report::github(reports),
    ));
    let Some((runbook, dag)) = checked.filter(|_| valid) else {
        return;
    };
    if let Ok(bound) = crate::bind::bind(&runbook, &[], None, true)
        && let Ok(plan) = crate::plan::build(
            &runbook,
            &dag,
            &bound,
            runbook.steps.len().checked_sub(1).map(Into::into),
            4,
            None,
        )
    {
        drop((
            crate::report::plan::human(&plan),
            crate::report::plan::json(&plan),
        ));
    }
}
