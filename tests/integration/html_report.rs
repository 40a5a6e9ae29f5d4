//! `show --format html`, the evidence report, rendered by a real browser (Debian's headless
//! Chromium, installed by `.ci/run`): the bars of the timeline, their labels, the critical
//! path, the point of no return, the approvals, no secret anywhere, hostile output shown as
//! text, and nothing the page would fetch.

use std::process::Command;

use crate::support::{Test, events_of};

const LONG_SECRET: &str = "correct-horse-battery-staple-9431";

/// A retried step, a loop, an approval, an irreversible step, a failure with hostile output
/// and the rollback it starts; a one-character secret and a long one used in a command.
const EVIDENCE: &str = r#"runbook: 1
name: evidence
rto: 1h
service_restored_at: cutover
params:
  note: { type: string }
secrets:
  long: { file: long.txt }
  short: { file: short.txt }
steps:
  - id: prepare
    run: { shell: sh, script: "test -n {{ secrets.short | shell_quote }} && echo long={{ secrets.long | shell_quote }}" }
    rollback: { run: { shell: sh, script: "echo unprepared" } }
  - id: flaky
    retry: { attempts: 3 }
    run: { shell: sh, script: "test -f marker || { touch marker; exit 1; }; echo second try" }
  - id: each
    needs: [flaky]
    for_each: [east, west]
    run: { shell: sh, script: "echo site {{ item }}" }
  - id: go
    needs: [each]
    approval: { prompt: "Cut over?" }
  - id: cutover
    needs: [go]
    irreversible: true
    run: { shell: sh, script: "echo cut over" }
  - id: broken
    needs: [cutover, prepare]
    run: { shell: sh, script: "echo '<script>alert(1)</script></details><b>bold</b>'; exit 2" }
"#;

const HOSTILE_PARAM: &str = "<script>alert('param')</script></details>";

/// The DOM Chromium builds from `page` (after parsing; no script runs since there is none).
pub fn rendered(page: &std::path::Path) -> String {
    let profile = tempfile::tempdir().expect("temp dir");
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("chromium is not installed: `.ci/run` installs it (apt-get install chromium)")
        });
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn html_report_in_headless_chromium_has_every_bar_the_approvals_and_no_secret() {
    let t = Test::new()
        .file("evidence.yaml", EVIDENCE)
        .file("long.txt", LONG_SECRET)
        .file("short.txt", "7");
    let run = Test::in_dir(t.path())
        .args([
            "run",
            "evidence.yaml",
            "--approve",
            "go",
            "--output",
            "json",
            "-p",
        ])
        .args([format!("note={HOSTILE_PARAM}")])
        .run();
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let events = run.events();
    let attempts = events_of(&events, "step_started").len();
    let rollbacks = events_of(&events, "rollback_step_started").len();
    // flaky twice, two loop items, go, prepare, cutover, broken; prepare rolled back.
    assert_eq!((attempts, rollbacks), (8, 1), "{}", run.stdout);

    let show = Test::in_dir(t.path())
        .args(["show", "--last", "--format", "html"])
        .run();
    assert_eq!(show.code, 0, "{}", show.stderr);
    let page = show.stdout;
    let file = t.path().join("evidence.html");
    std::fs::write(&file, &page).expect("write page");
    let dom = rendered(&file);

    // One bar per attempt and per rollback action, each labelled.
    assert_eq!(
        count(&dom, "class=\"bar step"),
        attempts,
        "step bars in:\n{dom}"
    );
    assert_eq!(count(&dom, "class=\"bar rollback"), rollbacks);
    assert_eq!(count(&dom, "class=\"bar loop"), 1);
    for label in [
        "flaky #1",
        "flaky #2",
        "each",
        "each[east]",
        "each[west]",
        "go",
        "cutover",
        "broken",
        "rollback of prepare",
    ] {
        let bar = regex::Regex::new(&format!(
            r#"<div class="bar [^"]*" data-step="[^"]*" style="[^"]*" title="[^"]*">{}</div>"#,
            regex::escape(label)
        ))
        .expect("regex");
        assert_eq!(bar.find_iter(&dom).count(), 1, "label {label} in:\n{dom}");
    }
    // The critical path runs through the retried step, the loop and the approval.
    assert!(dom.contains("data-step=\"flaky\""));
    assert!(
        dom.contains("<span class=\"critical-path\">flaky → each → go → cutover</span>"),
        "{dom}"
    );
    assert!(dom.contains("class=\"bar step critical failed\" data-step=\"flaky\""));
    assert!(!dom.contains("class=\"bar step critical succeeded\" data-step=\"prepare\""));
    // The point of no return, at the end of the irreversible step.
    assert_eq!(
        count(&dom, "class=\"point-of-no-return\" data-step=\"cutover\""),
        1
    );
    // The approval: who, how.
    let user = crate::support::os_user();
    assert!(
        dom.contains(&format!(
            "<li class=\"approval\" data-step=\"go\"><code>go</code>: approved by {user} (--approve)"
        )),
        "{dom}"
    );
    assert!(dom.contains("Time to service restored: <b>"), "{dom}");
    assert!(dom.contains("within the RTO of 1h"), "{dom}");

    // No secret: the long one nowhere (not in the command, not in its output); the
    // one-character one masked where the command used it.
    for text in [&page, &dom] {
        assert!(!text.contains(LONG_SECRET));
        assert!(
            text.contains("<pre class=\"stdout\">long=***</pre>"),
            "{text}"
        );
    }
    assert!(page.contains("test -n &#39;***&#39; &amp;&amp; echo long=&#39;***&#39;"));
    assert!(
        dom.contains("test -n '***' &amp;&amp; echo long='***'"),
        "{dom}"
    );
    assert!(!page.contains("&#39;7&#39;") && !dom.contains("'7'"));
    // Hostile output and params stay text: no element of theirs, the sections intact.
    assert_eq!(count(&dom, "<script"), 0, "{dom}");
    assert_eq!(count(&dom, "<b>bold"), 0);
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;/details&gt;&lt;b&gt;bold"));
    assert!(dom.contains("&lt;script&gt;alert('param')&lt;/script&gt;&lt;/details&gt;"));
    assert_eq!(count(&dom, "<details"), count(&dom, "</details>"), "{dom}");
    assert_eq!(count(&dom, "<details class=\"ran\""), 7);

    // Nothing to fetch: no link, source, style import or URL of any kind.
    for text in [&page, &dom] {
        for needle in ["src=", "href=", "url(", "@import", "http://", "https://"] {
            assert!(!text.contains(needle), "{needle} in the page");
        }
    }
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("@media print"));
}

/// A runbook file changed after the run describes another procedure: the report draws the
/// run's bars but no critical path, and says why.
#[test]
fn html_report_of_a_run_whose_runbook_changed_has_no_critical_path_and_says_so() {
    let yaml = "runbook: 1\nname: changed\nsteps:\n  - id: only\n    irreversible: true\n    run: { program: \"true\" }\n";
    let t = Test::new().file("changed.yaml", yaml);
    let run = Test::in_dir(t.path()).args(["run", "changed.yaml"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = t.file(
        "changed.yaml",
        yaml.replace("true\" }", "true\", args: [x] }"),
    );
    let show = Test::in_dir(t.path())
        .args(["show", "--last", "--format", "html"])
        .run();
    assert_eq!(show.code, 0, "{}", show.stderr);
    let path = t.path().canonicalize().expect("path").join("changed.yaml");
    assert!(
        show.stdout.contains(&format!(
            "<p class=\"no-critical-path\">No critical path or point of no return: the runbook file `{}` has changed since the run (its hash differs).</p>",
            path.display()
        )),
        "{}",
        show.stdout
    );
    assert_eq!(
        count(
            &show.stdout,
            "class=\"bar step succeeded\" data-step=\"only\""
        ),
        1
    );
    assert!(!show.stdout.contains("bar step critical"));
    assert!(!show.stdout.contains("class=\"point-of-no-return\""));
}
