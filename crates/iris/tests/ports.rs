//! `iris ports` prints the flows of the running configuration (R-29, SPEC §4, §10) as a table,
//! as JSON and as an nftables ruleset that `nft -c` accepts (skipped without nftables).
use std::process::Command;

fn iris(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iris"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run iris");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

const ENV: &[(&str, &str)] = &[
    ("IRIS_DOMAIN", "chat.example.com"),
    ("IRIS_RELAY__PUBLIC_NAME", "turn.example.com"),
    ("IRIS_RELAY__PUBLIC_IPS", "[\"203.0.113.7\"]"),
];

#[test]
fn ports_json_lists_profiles_flows_and_ephemeral_ranges() {
    let text = iris(&["ports", "--format", "json", "--no-resolve"], ENV);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let flows = v["flows"].as_array().expect("flows");
    let find = |profile: &str, proto: &str, port: u64, name: &str| {
        flows.iter().any(|f| {
            f["profile"] == profile
                && f["protocol"] == proto
                && f["direction"] == "outbound"
                && f["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == name))
                && f["ports"].as_array().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        p["first"].as_u64() <= Some(port) && Some(port) <= p["last"].as_u64()
                    })
                })
        })
    };
    assert!(
        find("collaboration", "tcp", 443, "chat.example.com"),
        "{text}"
    );
    assert!(
        find("collaboration", "udp", 3478, "turn.example.com"),
        "{text}"
    );
    assert!(
        find("collaboration", "tcp", 80, "turn.example.com"),
        "{text}"
    );
    assert!(find("hub", "tcp", 5061, "sip.chat.example.com"), "{text}");
    let eph = v["client_ephemeral_ports"].as_array().expect("ephemeral");
    assert_eq!(eph.len(), 3);
    assert!(text.contains("37000") && text.contains("60999"));
    assert_eq!(v["resolved"]["turn.example.com"][0], "203.0.113.7");
}

#[test]
fn ports_table_is_for_people() {
    let text = iris(&["ports", "--profile", "collaboration"], ENV);
    assert!(
        text.contains("profile") && text.contains("purpose"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("udp") && l.contains("3478") && l.contains("turn.example.com")),
        "{text}"
    );
    assert!(!text.contains("5061"), "hub flows filtered out: {text}");
}

#[test]
fn ports_nft_ruleset_is_accepted_by_nft() {
    let text = iris(&["ports", "--format", "nft", "--no-resolve"], ENV);
    assert!(
        text.contains("chain iris_egress") && text.contains("chain iris_ingress"),
        "{text}"
    );
    assert!(
        text.contains("203.0.113.7"),
        "relay public IP in its set: {text}"
    );
    assert!(text.contains("udp dport 3478"), "{text}");
    let nft = ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(nft) = nft else {
        println!("SKIPPED nft -c check: nftables not installed (apt-get install -y nftables)");
        return;
    };
    let path = std::env::temp_dir().join(format!("iris-ports-{}.nft", std::process::id()));
    std::fs::write(&path, &text).expect("write");
    let out = Command::new(nft)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("nft");
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("Operation not permitted") {
        println!("SKIPPED nft -c check: needs CAP_NET_ADMIN");
        return;
    }
    assert!(
        out.status.success(),
        "nft -c rejected the ruleset: {err}\n{text}"
    );
}
