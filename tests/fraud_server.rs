//! Anti-fraud and parallel limits on the real binary with real concurrent clients
//! (curl, each bound to its own loopback address with --interface), the lists imported
//! by the CLI from another process, and the audit trail read back with `filegate audit`.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ipnet::IpNet;
use serde_json::Value;

fn upload(server: &Server, tok: &str, file: &std::path::Path, query: &str) -> String {
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-F",
        &format!("file=@{}", file.display()),
        &server.url(&format!("/v1/files/uploads/{query}")),
    ]);
    assert_eq!(code, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["upload"]["file"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn link(server: &Server, tok: &str, query: &str) -> String {
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &server.url(&format!("/v1/files/downloads/?{query}")),
    ]);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["download"]["url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A slow reader (1 MB/s) from `from`; killed by the caller.
fn slow(url: &str, from: &str) -> Child {
    Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "--limit-rate",
            "1M",
            "--interface",
            from,
            url,
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// (status, reason) of a GET of `url` from loopback address `from`.
fn get(url: &str, from: &str, extra: &[&str]) -> (u16, String) {
    let mut args = vec!["--interface", from, "--max-time", "20"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let reason = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["reason"].as_str().map(str::to_string))
        .unwrap_or_default();
    (code.trim().parse().unwrap_or(0), reason)
}

/// Waits until `f` holds, for at most `secs`.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn filegate(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("FILEGATE_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn parallel_limits_sharing_and_cli_lists_with_real_clients_then_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Batches wait a minute: every audit row read at the end was written by the drain
    // on SIGTERM.
    let mut server = Server::start_in(
        &data_dir,
        &[
            ("FILEGATE_AUDIT__FLUSH_MS", "60000"),
            ("FILEGATE_AUDIT__BATCH_SIZE", "100000"),
        ],
    );
    let tok = server.token();
    // Larger than what loopback socket buffers hold, so a slow reader keeps its
    // response streaming for seconds.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0x5au8; 64 << 20]).unwrap();
    let id = upload(&server, &tok, &big, "?object_key=big.bin&autograph=true");

    // max_parallel_downloads=2: two slow readers run, a third is refused at once.
    let url = link(&server, &tok, &format!("file_id={id}&max_parallel_downloads=2"));
    let a = slow(&url, "127.0.0.1");
    let b = slow(&url, "127.0.0.1");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        get(&url, "127.0.0.1", &["-r", "0-99"]),
        (429, "too_many_parallel_downloads".into())
    );
    // A client that goes away frees its slot at once.
    kill(a);
    assert!(
        eventually(5, || get(&url, "127.0.0.1", &["-r", "0-99"]).0 == 206),
        "the slot of a dropped connection came back"
    );
    kill(b);

    // The same AutoGraph tag on two links shares one budget.
    let t1 = link(
        &server,
        &tok,
        &format!("file_id={id}&autograph_tag=cust-9&max_parallel_downloads=1"),
    );
    let t2 = link(
        &server,
        &tok,
        &format!("file_id={id}&autograph_tag=cust-9&max_parallel_downloads=1"),
    );
    assert_ne!(t1, t2);
    let c = slow(&t1, "127.0.0.1");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        get(&t2, "127.0.0.1", &["-r", "0-9"]),
        (429, "too_many_parallel_downloads".into())
    );
    kill(c);
    assert!(eventually(5, || get(&t2, "127.0.0.1", &["-r", "0-9"]).0 == 206));

    // anti_fraud: clients from two addresses at the same moment, exactly one wins.
    for round in 0..3 {
        let af = link(&server, &tok, &format!("file_id={id}&anti_fraud=true"));
        let results: Vec<(u16, String)> = std::thread::scope(|s| {
            let hs: Vec<_> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
                .into_iter()
                .map(|from| {
                    let af = &af;
                    s.spawn(move || get(af, from, &["-r", "0-9"]))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.0 == 206).count();
        let shared = results.iter().filter(|r| r.1 == "link_shared").count();
        assert_eq!((won, shared), (1, 2), "round {round}: {results:?}");
    }
    let af = link(&server, &tok, &format!("file_id={id}&anti_fraud=true"));
    assert_eq!(get(&af, "127.0.0.5", &["-r", "0-9"]).0, 206);
    assert_eq!(
        get(&af, "127.0.0.5", &["-r", "0-9", "-H", "Via: 1.1 corp-proxy"]),
        (403, "proxy_detected".into())
    );

    // The CLI changes the lists from another process; the server follows within ~10 s.
    let list = dir.path().join("block.txt");
    std::fs::write(&list, "# test\n127.0.0.6\n").unwrap();
    let (ok, out, err) = filegate(
        &data_dir,
        &["fraud", "import", "--list", "blocklist", list.to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
    let check = server.url("/v1/fraud/check/?ip=127.0.0.6");
    let auth = format!("Authorization: Bearer {tok}");
    assert!(
        eventually(15, || curl(&["-H", &auth, &check])
            .1
            .contains("\"blocklist\":true")),
        "the running server picked up the CLI's import"
    );
    let af = link(&server, &tok, &format!("file_id={id}&anti_fraud=true"));
    assert_eq!(get(&af, "127.0.0.6", &["-r", "0-9"]), (403, "blocked_ip".into()));
    assert_eq!(get(&af, "127.0.0.7", &["-r", "0-9"]).0, 206);

    // Stop gracefully: the audit writer drains before the process exits.
    let (ok, out, _) = filegate(&data_dir, &["audit", "--json"]);
    assert!(ok && out.is_empty(), "nothing written yet: {out}");
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(server.child.wait().unwrap().success());

    let (ok, out, err) = filegate(&data_dir, &["audit", "--json", "--limit", "1000"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let by = |reason: &str| rows.iter().filter(|r| r["reason"] == reason).count();
    assert_eq!(by("too_many_parallel_downloads"), 2, "{out}");
    assert_eq!(by("link_shared"), 6);
    assert_eq!(by("proxy_detected"), 1);
    assert_eq!(by("blocked_ip"), 1);
    // The first link: two slow readers cut short and the ranged requests, one client.
    let first = rows
        .iter()
        .find(|r| r["reason"].is_null() && r["client"] == "127.0.0.1" && r["autograph_tag"].is_null())
        .unwrap();
    assert!(first["requests"].as_u64().unwrap() >= 3, "{first}");
    assert!(first["bytes"].as_u64().unwrap() < 2 * (64 << 20), "{first}");
    let id_n = first["id"].to_string();
    let (ok, out, _) = filegate(&data_dir, &["audit", "--id", &id_n, "--json"]);
    assert!(ok);
    let detail: Value = serde_json::from_str(out.trim()).unwrap();
    let events = detail["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e["completed"] == false && e["status"] == 200)
            .count()
            >= 2,
        "the killed downloads are recorded as cut short: {detail}"
    );
    let (ok, out, _) = filegate(&data_dir, &["audit", "--reason", "blocked_ip"]);
    assert!(
        ok && out.contains("127.0.0.6") && out.contains("403 blocked_ip"),
        "{out}"
    );
}

/// 100 000 distinct entries: IPv4 /16–/32 in 1.0.0.0–126.255.255.255 and IPv6 /40–/64
/// in 2001:db8::/32 (deterministic pseudo-random).
fn generate(n: usize, seed: u64) -> Vec<IpNet> {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = next();
        let net = if r % 10 == 0 {
            let hi = 0x2001_0db8u128 << 96 | u128::from(next()) << 32;
            IpNet::new(IpAddr::V6(Ipv6Addr::from(hi)), 40 + (r % 25) as u8).unwrap()
        } else {
            let a = (1 + (r >> 8) % 126) as u32;
            let ip = Ipv4Addr::from(a << 24 | ((r >> 20) as u32 & 0x00ff_ffff));
            IpNet::new(IpAddr::V4(ip), 16 + ((r >> 50) % 17) as u8).unwrap()
        }
        .trunc();
        if seen.insert(net) {
            out.push(net);
        }
    }
    out
}

#[test]
fn the_cli_imports_100000_ranges_and_every_lookup_agrees_with_a_linear_scan() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let nets = generate(100_000, 0x2545_f491_4f6c_dd1d);
    let mut text = String::from("# generated for the test\n\n");
    for (i, n) in nets.iter().enumerate() {
        // Plain addresses for /32 and /128, a comment now and then.
        if n.prefix_len() == n.max_prefix_len() {
            text.push_str(&n.addr().to_string());
        } else {
            text.push_str(&n.to_string());
        }
        text.push_str(if i % 1000 == 0 { "   # sample\n" } else { "\n" });
    }
    let file = dir.path().join("blocklist.txt");
    std::fs::write(&file, &text).unwrap();

    let t = Instant::now();
    let (ok, out, err) = filegate(
        &data_dir,
        &[
            "fraud",
            "import",
            "--list",
            "blocklist",
            "--source",
            "feed",
            file.to_str().unwrap(),
        ],
    );
    let took = t.elapsed();
    assert!(ok, "{out}{err}");
    assert!(out.contains("blocklist/feed: 100000 entries imported"), "{out}");
    eprintln!("imported 100000 ranges with the CLI in {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");

    let (ok, out, _) = filegate(&data_dir, &["fraud", "list"]);
    assert!(ok && out.contains("feed") && out.contains("100000"), "{out}");

    // The in-memory sets agree with a linear scan of the entries.
    let catalog = filegate::catalog::Catalog::open(&data_dir).unwrap();
    let t = Instant::now();
    let sets = filegate::fraud::lists::load(&catalog.conn().unwrap()).unwrap();
    eprintln!(
        "loaded {} merged ranges in {:?}",
        sets.blocklist.len(),
        t.elapsed()
    );
    let bounds: Vec<(u128, u128)> = nets.iter().map(filegate::fraud::ranges::bounds).collect();
    let oracle = |ip: IpAddr| {
        let p = filegate::fraud::ranges::point(ip);
        bounds.iter().any(|(lo, hi)| *lo <= p && p <= *hi)
    };
    let mut probes: Vec<IpAddr> = Vec::new();
    for n in nets.iter().step_by(500) {
        // Both edges of an entry, and the addresses just outside them.
        probes.push(n.network());
        probes.push(n.broadcast());
        let (lo, hi) = filegate::fraud::ranges::bounds(n);
        probes.push(filegate::fraud::ranges::address(lo.wrapping_sub(1)));
        probes.push(filegate::fraud::ranges::address(hi.wrapping_add(1)));
    }
    let mut x: u32 = 12345;
    for _ in 0..300 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        probes.push(IpAddr::V4(Ipv4Addr::from(x)));
    }
    for p in &probes {
        assert_eq!(sets.blocklist.contains(*p), oracle(*p), "{p}");
    }
    assert!(sets.anonymizers.is_empty());

    // fraud check names the entry.
    let inside = nets[1234];
    let (ok, out, _) = filegate(&data_dir, &["fraud", "check", &inside.network().to_string()]);
    assert!(
        ok && out.contains("blocklist") && out.contains(&inside.to_string()),
        "{out}"
    );
    let (ok, out, _) = filegate(&data_dir, &["fraud", "check", "203.0.113.1"]);
    assert!(ok && out.contains("on no list"), "{out}");

    // A re-import replaces the source; a bad file changes nothing.
    std::fs::write(&file, "203.0.113.0/24\n").unwrap();
    let (ok, out, err) = filegate(
        &data_dir,
        &[
            "fraud",
            "import",
            "--list",
            "blocklist",
            "--source",
            "feed",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}{err}");
    std::fs::write(&file, "198.51.100.0/24\n10.0.0.0/33\n").unwrap();
    let (ok, _, err) = filegate(
        &data_dir,
        &[
            "fraud",
            "import",
            "--list",
            "blocklist",
            "--source",
            "feed",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        !ok && err.contains("line 2") && err.contains("nothing was changed"),
        "{err}"
    );
    let sets = filegate::fraud::lists::load(&catalog.conn().unwrap()).unwrap();
    assert_eq!(sets.blocklist.len(), 1);
    assert!(sets.blocklist.contains("203.0.113.77".parse().unwrap()));
    assert!(!sets.blocklist.contains(inside.network()));
    let (ok, _, err) = filegate(&data_dir, &["fraud", "import", "--list", "whitelist", "-"]);
    assert!(!ok && err.contains("blocklist or anonymizers"), "{err}");
}
