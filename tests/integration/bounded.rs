//! Bounded work on hostile input: templates that loop forever or render gigabytes, expressions
//! deep enough to overflow the stack, huge names, huge plans and endless params files. Each
//! ends quickly with a clear, located error, never a crash or a hang.

use std::time::{Duration, Instant};

use crate::support::{Output, Test, validate};

fn book(steps: &str) -> String {
    format!("runbook: 1\nname: t\nsteps:\n{steps}")
}

/// A step whose script is `script` (double-quoted YAML).
fn script_step(script: &str) -> String {
    book(&format!(
        "  - id: a\n    run: {{ shell: sh, script: \"{script}\" }}\n"
    ))
}

/// A step with `when: "<expression>"`.
fn when_step(expression: &str) -> String {
    book(&format!(
        "  - id: a\n    when: \"{expression}\"\n    run: {{ shell: sh, script: echo }}\n"
    ))
}

const TEN_BILLION: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

/// The same loops, sized by a param, so only rendering can find out.
fn loop_by_param(timeout: &str) -> String {
    format!(
        "runbook: 1\nname: t\nparams:\n  n: {{ type: int, default: 100000 }}\nsteps:\n  - id: a\n    timeout: {timeout}\n    run: {{ shell: sh, script: \"{{% for i in range(params.n) %}}{{% for j in range(params.n) %}}x{{% endfor %}}{{% endfor %}}\" }}\n"
    )
}

#[track_caller]
fn assert_quick(started: Instant, bound: Duration) {
    let elapsed = started.elapsed();
    assert!(elapsed < bound, "took {elapsed:?}");
}

/// Runs `t`, which must end within `bound` with exit `code` and `message` on stderr.
#[track_caller]
fn ends_quickly_with(t: &Test, bound: Duration, code: i32, message: &str) -> Output {
    let started = Instant::now();
    let out = t.run();
    assert_quick(started, bound);
    assert_eq!(out.code, code, "{}", out.stderr);
    assert!(out.stderr.contains(message), "{}", out.stderr);
    out
}

#[test]
fn plan_refuses_a_template_loop_of_ten_billion_iterations() {
    let started = Instant::now();
    let out = Test::new()
        .file("runbook.yaml", script_step(TEN_BILLION))
        .args(["plan", "runbook.yaml"])
        .run();
    assert_quick(started, Duration::from_secs(30));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("runbook::resource_limit"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("these loops run 10000000000 times"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("╭─[runbook.yaml:5:63]"),
        "{}",
        out.stderr
    );

    let (diags, code) = validate(&script_step(TEN_BILLION));
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(
        (diags[0].code.as_str(), diags[0].line, diags[0].column),
        ("runbook::resource_limit", 5, 63)
    );
}

#[test]
fn plan_stops_a_template_loop_sized_by_a_param() {
    let t = Test::new()
        .file("runbook.yaml", loop_by_param("1h"))
        .args(["plan", "runbook.yaml"]);
    let out = ends_quickly_with(
        &t,
        Duration::from_secs(60),
        2,
        "step `a`: cannot render run.script: the template does too much work (more than 20000000 steps",
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn run_of_an_endless_template_fails_within_its_timeout() {
    let t = Test::new()
        .file("runbook.yaml", loop_by_param("90s"))
        .args(["run", "runbook.yaml", "--output", "json"])
        .env("RUNBOOK_STATE_DIR", "state");
    let started = Instant::now();
    let out = t.run();
    assert_quick(started, Duration::from_secs(90));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let failed = crate::support::events_of(&out.events(), "attempt_failed")
        .into_iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 1, "{}", out.stdout);
    assert!(
        failed[0].starts_with("cannot render run.script: the template does too much work"),
        "{failed:?}"
    );
}

#[test]
fn a_template_rendering_gigabytes_is_cut_at_the_output_limit() {
    let yaml = "runbook: 1\nname: t\nparams:\n  n: { type: int, default: 100000 }\nsteps:\n  - id: a\n    run: { shell: sh, script: \"{% for i in range(params.n) %}{{ 'x' * 1000000 }}{% endfor %}\" }\n";
    let t = Test::new()
        .file("runbook.yaml", yaml)
        .args(["plan", "runbook.yaml"]);
    ends_quickly_with(
        &t,
        Duration::from_secs(60),
        2,
        "step `a`: cannot render run.script: the rendered text exceeds 16 MiB",
    );
}

/// Expressions whose syntax tree is one long chain: each overflowed the stack (exit 134).
fn deep_expressions() -> Vec<(&'static str, String)> {
    vec![
        ("unary minus", format!("{}1", "-".repeat(20_000))),
        ("and chain", vec!["true"; 25_000].join(" and ")),
        ("filter chain", format!("1{}", "|abs".repeat(25_000))),
        ("not chain", format!("{}nope", "not ".repeat(30_000))),
    ]
}

#[test]
fn deep_expressions_do_not_overflow_the_stack() {
    for (name, expression) in deep_expressions() {
        for yaml in [
            when_step(&expression),
            script_step(&format!("{{{{ {expression} }}}}")),
        ] {
            let (diags, code) = validate(&yaml);
            assert_eq!(code, 1, "{name}");
            assert_eq!(diags.len(), 1, "{name}: {diags:?}");
            assert_eq!(diags[0].code, "runbook::resource_limit", "{name}");
            assert_eq!(diags[0].line, 5, "{name}");
            assert!(
                diags[0].message.contains("more than 1000 operators"),
                "{name}: {}",
                diags[0].message
            );
            plan_and_run_refuse(&yaml, "runbook::resource_limit");
        }
    }
}

#[test]
fn closing_braces_in_a_when_do_not_panic() {
    let yaml = when_step("x }} y");
    let (diags, code) = validate(&yaml);
    assert_eq!(code, 1);
    assert_eq!(
        diags,
        [crate::support::diag(
            "expression_syntax",
            5,
            14,
            "expression syntax error: `}}` ends a bare expression early; `when`, `until` and `assert` take no braces"
        )]
    );
    plan_and_run_refuse(&yaml, "runbook::expression_syntax");
}

/// `plan` and `run` refuse the runbook (exit 2) with the diagnostic `code`, and run nothing.
#[track_caller]
fn plan_and_run_refuse(yaml: &str, code: &str) {
    let t = Test::new().file("runbook.yaml", yaml);
    for command in ["plan", "run"] {
        let out = Test::in_dir(t.path())
            .args([command, "runbook.yaml"])
            .env("RUNBOOK_STATE_DIR", "state")
            .run();
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(out.stderr.contains(code), "{command}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{command}");
    }
}

#[test]
fn a_long_expression_that_is_not_deep_still_validates() {
    // 800 operators in one condition, and thousands of small templates: under every limit.
    let expression = vec!["params.a == 1"; 200].join(" or ");
    let yaml = format!(
        "runbook: 1\nname: t\nparams:\n  a: {{ type: int, default: 1 }}\nsteps:\n  - id: a\n    when: \"{expression}\"\n    run: {{ shell: sh, script: \"{}\" }}\n",
        "{{ params.a | shell_quote }} ".repeat(5_000)
    );
    let (diags, code) = validate(&yaml);
    assert_eq!((diags, code), (vec![], 0));
    let out = Test::new()
        .file("runbook.yaml", yaml)
        .args(["plan", "runbook.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["steps"][0]["when"]["value"], true);
}

#[test]
fn did_you_mean_on_very_long_names_takes_linear_time() {
    // Comparing two 20,000-character names took 3.5 s; these would take minutes.
    let long = "a".repeat(200_000);
    let yaml = book(&format!(
        "  - id: {long}\n    wait: 1s\n  - id: b\n    needs: [{long}c]\n    wait: 1s\n"
    ));
    let started = Instant::now();
    let (diags, code) = validate(&yaml);
    assert_quick(started, Duration::from_secs(20));
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "runbook::unknown_step");
}

#[test]
fn human_plan_of_a_long_chain_takes_linear_time() {
    let mut yaml = String::from("runbook: 1\nname: t\nsteps:\n  - id: s0\n    wait: 1s\n");
    let n = 40_000;
    for i in 1..n {
        yaml.push_str(&format!(
            "  - id: s{i}\n    needs: [s{}]\n    wait: 1s\n    rollback: {{ run: {{ program: 'true' }} }}\n",
            i - 1
        ));
    }
    let t = Test::new().file("runbook.yaml", yaml);
    let (out, cpu) = Test::in_dir(t.path())
        .args(["plan", "runbook.yaml", "--fail-at", &format!("s{}", n - 1)])
        .run_cpu_timed();
    // A debug build takes 7–9 s of CPU; looking each step up in the list took 40 s alone.
    // CPU time, not wall time: the bound holds however busy the machine is.
    assert!(cpu < Duration::from_secs(25), "took {cpu:?} of CPU");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&format!("{n} steps in {n} waves")));
    assert!(out.stdout.contains(&format!("\nWave {n}\n  ▸ s{}", n - 1)));
    assert!(out.stdout.contains("     39998. s1\n"), "rollback list");
}

#[test]
fn validating_a_long_chain_that_reads_outputs_takes_linear_time() {
    // Every step reads its parent's output and the first step's, written last: looking the
    // read step up in the list, and walking the chain back to the first step for each
    // reader, were each quadratic (100,000 random steps took 99 s).
    let n: u64 = 40_000;
    // First a step that reads one that is not its ancestor: the walk still answers.
    let mut yaml = format!(
        "runbook: 1\nname: t\nsteps:\n  - id: late\n    run: {{ program: echo, args: [\"{{{{ steps.s{}.stdout }}}}\"] }}\n",
        n - 1
    );
    for i in (1..n).rev() {
        yaml.push_str(&format!(
            "  - id: s{i}\n    needs: [s{}]\n    run: {{ program: echo, args: [\"{{{{ steps.s0.stdout }}}}\", \"{{{{ steps.s{}.stdout }}}}\"] }}\n",
            i - 1,
            i - 1
        ));
    }
    yaml.push_str("  - id: s0\n    run: { program: echo }\n");
    let t = Test::new().file("runbook.yaml", yaml);
    let (out, cpu) = Test::in_dir(t.path())
        .args(["validate", "--format", "json", "runbook.yaml"])
        .run_cpu_timed();
    // A debug build takes 4–7 s of CPU; each quadratic part alone took 40 s or more.
    // CPU time, not wall time: the bound holds however busy the machine is.
    assert!(cpu < Duration::from_secs(16), "took {cpu:?} of CPU");
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(
        out.diags(),
        [crate::support::diag(
            "not_an_ancestor",
            5,
            // `steps.s39999`, from its root.
            38,
            "step `late` reads `steps.s39999`, but `s39999` does not run before it"
        )]
    );
}

#[test]
fn validating_a_large_runbook_holds_little_more_than_ten_times_its_size() {
    // Each step needs up to three earlier ones and reads a param and a parent's output.
    let steps = |n: usize| {
        let mut yaml = String::from(
            "runbook: 1\nname: t\nparams:\n  target: { default: x }\nsteps:\n  - id: s0\n    run: { program: echo }\n",
        );
        for i in 1..n {
            let mut needs = vec![i - 1, i / 2, i / 3];
            needs.dedup();
            let list: Vec<String> = needs.iter().map(|p| format!("s{p}")).collect();
            yaml.push_str(&format!(
                "  - id: s{i}\n    needs: [{}]\n    run: {{ program: echo, args: [\"{{{{ params.target }}}}\", \"{{{{ steps.s{}.stdout }}}}\"] }}\n",
                list.join(", "),
                i - 1
            ));
        }
        yaml
    };
    let peak = |yaml: String| {
        let t = Test::new().file("runbook.yaml", yaml);
        let (out, _, peak) = Test::in_dir(t.path())
            .args(["validate", "--format", "json", "runbook.yaml"])
            .run_measured();
        assert_eq!(out.code, 0, "{}", out.stdout);
        peak
    };
    let large = steps(30_000);
    let size = large.len() as u64;
    // What the program holds for any file (its code, a small runbook) is not counted.
    let held = peak(large).saturating_sub(peak(steps(10)));
    // About 9× the file here. 12–13× with 16-byte spans, a map per step even when empty and
    // lists grown by doubling; holding the whole tree with the whole model took 26×, and
    // with copies of the steps besides, 80×.
    assert!(
        held < 10 * size,
        "held {held} bytes for a file of {size}: {:.1}×",
        held as f64 / size as f64
    );
}

#[test]
fn params_file_from_dev_zero_is_refused_at_its_size_cap() {
    let yaml = "runbook: 1\nname: t\nparams:\n  db: { type: string }\nsteps:\n  - id: a\n    run: { shell: sh, script: \"echo {{ params.db }}\" }\n";
    let t = Test::new().file("runbook.yaml", yaml).args([
        "plan",
        "runbook.yaml",
        "--params",
        "/dev/zero",
    ]);
    ends_quickly_with(
        &t,
        Duration::from_secs(30),
        2,
        "cannot read params file `/dev/zero`: larger than 16 MiB, the limit for a params file",
    );
}

#[test]
fn secret_file_from_dev_zero_is_refused_at_its_size_cap() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { file: /dev/zero }\nsteps:\n  - id: a\n    run: { shell: sh, script: \"echo {{ secrets.pw }} > ran\" }\n";
    let t = Test::new()
        .file("runbook.yaml", yaml)
        .args(["run", "runbook.yaml"])
        .env("RUNBOOK_STATE_DIR", "state");
    ends_quickly_with(
        &t,
        Duration::from_secs(30),
        2,
        "secret `pw`: cannot read `/dev/zero`: larger than 1 MiB, the limit for a secret file",
    );
    assert_eq!(t.read("ran"), "");
}

#[test]
fn empty_value_in_a_params_file_is_missing_not_null() {
    let yaml = "runbook: 1\nname: t\nparams:\n  db: { type: string, pattern: '[a-z]+' }\n  port: { type: int, default: 1433 }\nsteps:\n  - id: a\n    run: { shell: sh, script: \"echo {{ params.db }} {{ params.port }} > ran\" }\n";
    for empty in ["db:\n", "db: ~\n", "db: null\nport:\n"] {
        let t = Test::new()
            .file("runbook.yaml", yaml)
            .file("params.yaml", empty)
            .args(["run", "runbook.yaml", "--params", "params.yaml"])
            .env("RUNBOOK_STATE_DIR", "state");
        let out = t.run();
        assert_eq!(out.code, 2, "{empty:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("missing required param `db`"),
            "{empty:?}: {}",
            out.stderr
        );
        assert_eq!(t.read("ran"), "", "{empty:?}");
    }
    // An empty optional value takes the default.
    let t = Test::new()
        .file("runbook.yaml", yaml)
        .file("params.yaml", "db: prod\nport:\n")
        .args(["run", "runbook.yaml", "--params", "params.yaml"])
        .env("RUNBOOK_STATE_DIR", "state");
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(t.read("ran"), "prod 1433\n");
}
