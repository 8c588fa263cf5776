//! `kith-bench http`: searches per second over HTTP on loopback, against a real `kith
//! serve` process, with the time the server took to build its index from the store and
//! its peak memory.
//!
//! The services are the search benchmark's (the demo's, copied round 40 UK towns),
//! written to a fresh SQLite database with made-up postcodes round each town. The
//! server is the release `kith` binary; the load comes from keep-alive connections that
//! each send the next query as soon as the last answer arrives.

use crate::search::{PHRASES, TOWNS, generate, town_code};
use anyhow::{Context, Result, bail};
use kith_domain::geo::PostcodePlace;
use kith_domain::postcode::Postcode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const USAGE: &str = "usage: kith-bench http [--services N] [--connections C] [--seconds S] [--kith PATH]
                       [--server-log F] [--data-dir DIR]

  --services N     services in the directory (default 100000)
  --connections C  concurrent keep-alive connections, or a list such as 8,16,32 for one
                   load of each in turn on the same server (default 32)
  --seconds S      how long to load the server (default 20)
  --kith PATH      the kith binary (default target/release/kith)
  --server-log F   keep the server's log in F (default: discarded)
  --data-dir DIR   keep the generated directory in DIR and, on later runs with the same
                   --services, load it from there instead of writing it again (default: a
                   temporary directory, removed afterwards)";

/// Postcodes made up round each town: "ZZ1 1AB" and so on, in the town's council area,
/// scattered over about 5 km of its centre.
const POSTCODES_PER_TOWN: usize = 500;

fn postcodes() -> Vec<PostcodePlace> {
    let letters = b"ABDEFGHJLNPQRSTUWXYZ";
    let mut out = Vec::new();
    for (t, (_, lat, lon)) in TOWNS.iter().enumerate() {
        for n in 0..POSTCODES_PER_TOWN {
            let code = format!(
                "ZZ{} {}{}{}",
                t + 1,
                1 + n % 9,
                char::from(letters[(n / 9) % 20]),
                char::from(letters[(n / 180) % 20])
            );
            let Ok(postcode) = Postcode::parse(&code) else { continue };
            // Spread by two co-prime strides: up to about 5.5 km north or south, 5 km east or west.
            let dlat = ((n * 37) % 101) as f64 * 0.001 - 0.05;
            let dlon = ((n * 53) % 103) as f64 * 0.0016 - 0.082;
            out.push(PostcodePlace {
                postcode,
                latitude: lat + dlat,
                longitude: lon + dlon,
                country: None,
                local_authority: Some(town_code(t)),
                health_area: None,
                hscp: None,
                ward: None,
                lsoa11: None,
                lsoa21: None,
            });
        }
    }
    out
}

/// Every phrase at every postcode, in a scrambled order, so that no query is asked
/// twice in a run: nothing a server keeps between answers can serve a whole answer
/// again, only services it has shown before.
fn queries(places: &[PostcodePlace]) -> Vec<String> {
    let n = PHRASES.len() * places.len();
    // A stride co-prime with n visits every index once, jumping across towns and phrases.
    let stride = (n / 2..n).find(|s| gcd(*s, n) == 1 && s % 7 == 3).unwrap_or(1);
    (0..n)
        .map(|i| {
            let j = (i * stride) % n;
            let words = PHRASES[j % PHRASES.len()].replace(' ', "+");
            let pc = places[j / PHRASES.len()].postcode.as_str().replace(' ', "+");
            format!("/oruk/services?search={words}&postcode={pc}&per_page=20")
        })
        .collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Asks the server to stop, as Ctrl-C would, so that it logs what it kept; kills it if
/// it has not stopped within five seconds.
async fn stop(server: &mut std::process::Child) {
    let asked = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    if asked.is_ok_and(|s| s.success()) {
        for _ in 0..100 {
            if matches!(server.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}

fn peak_memory_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

async fn get(stream: &mut BufReader<TcpStream>, path: &str) -> Result<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.get_mut().write_all(request.as_bytes()).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(status)
}

pub async fn run(args: Vec<String>) -> Result<()> {
    let mut services = 100_000usize;
    let mut connections = vec![32usize];
    let mut seconds = 20u64;
    let mut kith = std::path::PathBuf::from("target/release/kith");
    let mut server_log: Option<std::path::PathBuf> = None;
    let mut data_dir: Option<std::path::PathBuf> = None;
    let Some(flags) = crate::flags(args, USAGE)? else { return Ok(()) };
    for (flag, value) in flags {
        match flag.as_str() {
            "--services" => services = value.parse().context("--services must be a whole number")?,
            "--connections" => {
                connections = value
                    .split(',')
                    .map(|c| c.trim().parse().ok().filter(|c| *c > 0))
                    .collect::<Option<Vec<usize>>>()
                    .context("--connections must be whole numbers above 0, such as 32 or 8,16,32")?;
            }
            "--seconds" => seconds = value.parse().context("--seconds must be a whole number")?,
            "--kith" => kith = value.into(),
            "--server-log" => server_log = Some(value.into()),
            "--data-dir" => data_dir = Some(value.into()),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if !kith.exists() {
        bail!("{} is missing: build it with `cargo build --release -p kith`", kith.display());
    }

    let temp = tempfile::tempdir()?;
    let dir = data_dir.as_deref().unwrap_or(temp.path());
    let places = postcodes();
    let started = Instant::now();
    {
        let clock: Arc<dyn kith_domain::Clock> = Arc::new(kith_domain::SystemClock);
        let store = kith_store::sqlite::SqliteStore::open(&dir.join("kith.db"), clock).await?;
        use kith_store::Store;
        let stored = store.counts().await?.services;
        if stored == services as u64 {
            eprintln!("using the {stored} services already stored in {}", dir.display());
            // The made-up postcodes may have changed since they were written.
            store.put_postcodes(places.clone()).await?;
        } else if stored > 0 {
            bail!("{} holds {stored} services, not {services}: use another --data-dir", dir.display());
        } else {
            store.put_postcodes(places.clone()).await?;
            let all = generate(services);
            for chunk in all.chunks(20_000) {
                let mut batch = kith_domain::DirectoryBatch::new();
                for s in chunk {
                    batch.add_service(s.clone());
                }
                store.write_batch(batch).await?;
            }
            eprintln!("stored {services} services in {:.1?}", started.elapsed());
        }
    }

    // The server builds its index from the store on every run: that is one of the figures.
    match std::fs::remove_dir_all(dir.join("index")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).context("removing the old index"),
        _ => {}
    }

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let started = Instant::now();
    let mut server = std::process::Command::new(&kith)
        .args(["--data-dir", &dir.display().to_string(), "serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(match &server_log {
            Some(path) => std::fs::File::create(path).context("creating the server log")?.into(),
            None => std::process::Stdio::null(),
        })
        .spawn()
        .context("starting kith serve")?;
    // The server answers at once and builds its index from the store meanwhile: the
    // clock stops when it says it is ready.
    let index_build = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await
            && matches!(get(&mut BufReader::new(stream), "/readyz").await, Ok(200))
        {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = server.kill();
            bail!("the server did not start within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("server indexed the store and was ready after {index_build:.1?}");

    let paths = Arc::new(queries(&places));
    // One count across every load, so a later load asks nothing an earlier one asked.
    let next = Arc::new(AtomicUsize::new(0));
    println!(
        "\nHTTP searches on loopback, {services} services, {seconds} s at each number of connections: GET /oruk/services?search=…&postcode=…&per_page=20 (fully nested JSON), {} different queries, none asked twice. Index built from the store in {:.1} s.\n",
        paths.len(),
        index_build.as_secs_f64()
    );
    println!("| connections | searches/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|");
    for &c in &connections {
        let (times, errors) = load(port, &paths, &next, c, seconds).await?;
        let p = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
        println!(
            "| {c} | **{:.0}** | {:.1} ms | {:.1} ms | {errors} |",
            times.len() as f64 / seconds as f64,
            p(0.5).as_secs_f64() * 1e3,
            p(0.99).as_secs_f64() * 1e3,
        );
    }
    let peak = peak_memory_kb(server.id());
    stop(&mut server).await;
    println!("\nServer peak memory: {}.", peak.map_or("unknown".into(), |kb| format!("{:.0} MB", kb as f64 / 1024.0)));
    Ok(())
}

/// Loads the server from `connections` keep-alive connections for `seconds`: each sends
/// the next query as soon as its last answer arrives. Returns the sorted answer times
/// and the number of failures.
async fn load(
    port: u16,
    paths: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    connections: usize,
    seconds: u64,
) -> Result<(Vec<Duration>, u64)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (paths, next) = (paths.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0u64;
            let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else { return (times, 1) };
            let mut stream = BufReader::new(stream);
            while Instant::now() < deadline {
                let path = &paths[next.fetch_add(1, Ordering::Relaxed) % paths.len()];
                let t = Instant::now();
                match get(&mut stream, path).await {
                    Ok(200) => times.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (times, errors)
        }));
    }
    let mut times = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (mut ts, e) = t.await?;
        times.append(&mut ts);
        errors += e;
    }
    times.sort();
    Ok((times, errors))
}
