//! `keel-ops config check`: the same validation the servers run at startup, without starting.

use crate::exit;
use keel_config::{Reader, Settings, Source};

pub(crate) fn check(source: &dyn Source, json: bool) -> u8 {
    let mut r = Reader::new(source);
    let s = Settings::read(&mut r);
    // The job encryption keys: malformed, or missing in production, stop keel-api and keel-worker.
    keel_queue::KeySettings::read(&mut r, s.is_production());
    let problems = r.into_problems();
    if json {
        let list: Vec<_> =
            problems.iter().map(|p| serde_json::json!({"variable": p.var, "problem": p.message})).collect();
        crate::output::print_json(&serde_json::json!({
            "ok": problems.is_empty(),
            "problems": list,
            "database": s.database.to_string(),
            "backend": s.database.backend_name(),
            "bind": s.bind.to_string(),
        }));
    } else if problems.is_empty() {
        println!("configuration OK");
        println!("  database         {}", s.database);
        println!("  bind             {}", s.bind);
        println!("  environment      {:?}", s.environment);
        println!("  embedded worker  {}", s.embedded_worker);
        println!("  auto migrate     {}", s.auto_migrate);
    } else {
        eprint!("{}", keel_config::Problems(problems.clone()));
    }
    if problems.is_empty() {
        exit::OK
    } else {
        exit::USAGE
    }
}
