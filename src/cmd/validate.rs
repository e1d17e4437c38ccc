//! `moodlestack validate`: load the stack file with `--name`/`--set`, report every problem
//! (errors and warnings, each located), and exit 0 when it is valid.

use super::common::{load_stack_sourced, Exit, Outcome};
use crate::Global;
use moodlestack_stack::Names;
use std::path::Path;

pub fn run(g: &Global, path: &Path) -> Outcome {
    let loaded = load_stack_sourced(g, path)?;
    let s = &loaded.stack;
    if g.quiet {
        return Ok(Exit::Ok);
    }
    let warnings = match loaded.warnings.len() {
        0 => String::new(),
        1 => " (1 warning)".to_string(),
        n => format!(" ({n} warnings)"),
    };
    println!("{}: stack `{}` is valid{warnings}", path.display(), s.name);
    if g.verbose > 0 {
        let names = Names::of(s);
        let network = match &s.network.existing {
            Some(ex) => format!(
                "existing {} ({} public, {} private subnets)",
                ex.vpc_id,
                ex.public_subnet_ids.len(),
                ex.private_subnet_ids.len()
            ),
            None => format!(
                "{} in {} (public {}, private {})",
                s.network.cidr,
                s.zones().join(", "),
                s.public_subnet_cidrs().join(", "),
                s.private_subnet_cidrs().join(", ")
            ),
        };
        println!("  region      {}", s.region);
        println!("  network     {network}");
        println!(
            "  database    {} {} {}{}",
            s.database.engine.rds_name(),
            s.database.engine_version(),
            s.database.instance_class,
            if s.database.multi_az {
                ", Multi-AZ"
            } else {
                ""
            }
        );
        println!(
            "  web fleet   {}-{} of {} (On-Demand base {}, {})",
            s.web.min,
            s.web.max,
            s.web.instance_types.join(", "),
            s.web.on_demand_base,
            s.web.spot_allocation_strategy
        );
        println!("  stable      {}", s.stable.instance_type);
        println!(
            "  site        {} ({})",
            s.moodle.wwwroot,
            if s.https() { "HTTPS" } else { "HTTP only" }
        );
        println!(
            "  names       ALB {}, target group {}, DB {}, Redis {}",
            names.load_balancer(),
            names.target_group(),
            names.db_identifier(),
            names.cache_replication_group()
        );
    }
    Ok(Exit::Ok)
}
