//! The GitHub Action's job-summary script renders every report type (needs jq).

use std::process::Command;

fn summary(golden: &str) -> Option<String> {
    if Command::new("jq").arg("--version").output().is_err() {
        if std::env::var("ICEPROBE_REQUIRE_NETNS").as_deref() == Ok("1") {
            panic!("jq is not installed");
        }
        eprintln!("SKIPPED: jq is not installed");
        return None;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/action-summary.sh"))
        .arg(format!("{root}/fixtures/golden/{golden}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn check_summary_is_a_markdown_table_with_fixes() {
    let Some(s) = summary("check.json") else {
        return;
    };
    assert!(s.starts_with("## iceprobe check: FAILED"), "{s}");
    assert!(
        s.contains("| turn:turn.example.org?transport=tcp | 198.18.0.1:3478 | tcp |"),
        "{s}"
    );
    assert!(s.contains("FAIL 401"), "{s}");
    assert!(s.contains("### What to fix"), "{s}");
}

#[test]
fn gather_and_nat_summaries() {
    let Some(g) = summary("gather.json") else {
        return;
    };
    assert!(g.contains("| relay | 198.18.0.1:49154 | tls |"), "{g}");
    assert!(g.contains("turn-auth"), "{g}");
    let Some(n) = summary("nat.json") else { return };
    assert!(n.starts_with("## iceprobe nat:"), "{n}");
    assert!(n.contains("- **ipv4**:"), "{n}");
}

#[test]
fn action_passes_secrets_by_environment_only() {
    let action =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap();
    assert!(action.contains("ICEPROBE_CREDENTIAL: ${{ inputs.credential }}"));
    assert!(action.contains("ICEPROBE_TURN_SECRET: ${{ inputs.turn-secret }}"));
    assert!(!action.contains("--credential "), "never in argv");
    assert!(action.contains("GITHUB_STEP_SUMMARY"));
}
