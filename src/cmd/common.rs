//! What several commands share: loading the stack with the global overrides, colors, and the
//! cloud client.

use crate::{ColorChoice, Global};
use moodlestack_stack::{LoadOptions, Stack};
use std::io::IsTerminal;
use std::path::Path;

/// Exit codes (documented in `main.rs` and README).
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_CHANGES: u8 = 2;

/// Loads and validates the stack file with `--name`/`--set`. Warnings go to stderr (unless
/// `-q`); on failure the full report (every problem, located, with its fix) goes to stderr and
/// the exit code is returned.
pub fn load_stack(g: &Global, path: &Path) -> Result<Stack, u8> {
    load_stack_sourced(g, path).map(|loaded| loaded.stack)
}

/// [`load_stack`], keeping where each field came from (for checks that point into the file
/// later, e.g. [`moodlestack_stack::check_image_architecture`]).
pub fn load_stack_sourced(g: &Global, path: &Path) -> Result<moodlestack_stack::Loaded, u8> {
    let options = LoadOptions {
        name: g.name.clone(),
        set: g.set.clone(),
    };
    match moodlestack_stack::load(path, &options) {
        Ok(loaded) => {
            if !g.quiet {
                eprint!("{}", loaded.warnings_report(color_stderr(g)));
            }
            Ok(loaded)
        }
        Err(e) => {
            eprint!("{}", e.render(color_stderr(g)));
            Err(EXIT_ERROR)
        }
    }
}

/// Whether to color output written to stdout.
pub fn color_stdout(g: &Global) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Whether to color output written to stderr.
pub fn color_stderr(g: &Global) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// The stack's scope for cloud calls.
pub fn scope(stack: &Stack) -> moodlestack_model::Scope {
    moodlestack_model::Scope {
        stack: stack.name.clone(),
        region: stack.region.clone(),
    }
}

/// The AWS cloud for the stack's region (credentials, profiles and `AWS_ENDPOINT_URL` from the
/// environment).
pub async fn cloud(stack: &Stack) -> moodlestack_aws::AwsCloud {
    let cloud = moodlestack_aws::AwsCloud::from_env(&stack.region).await;
    super::stats::register(cloud.stats());
    cloud
}

/// A tokio runtime for the commands that talk to AWS.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The AMI every node boots: the explicit `ami.id`, or the SSM parameter resolved now, with its
/// architecture and root device read from EC2.
pub async fn resolve_image(
    stack: &Stack,
    cloud: &dyn moodlestack_model::Cloud,
) -> anyhow::Result<moodlestack_graph::Image> {
    let image_id = match &stack.ami.id {
        Some(id) => id.clone(),
        None => cloud
            .resolve_parameter(&stack.ami.ssm_parameter)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot resolve the AMI from SSM parameter {}: {e}\n  \
                 fix: set `ami.id` in the stack file, or check the parameter name and region",
                    stack.ami.ssm_parameter
                )
            })?,
    };
    let info = cloud.image(&image_id).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "AMI {image_id} does not exist in {}\n  fix: set `ami.id` to an image of this region",
            stack.region
        )
    })?;
    Ok(moodlestack_graph::Image {
        image_id: info.image_id,
        architecture: info.architecture,
        root_device_name: info.root_device_name,
    })
}

/// The desired resource graph of `stack` (the AMI resolved through `cloud`).
pub async fn desired(
    stack: &Stack,
    cloud: &dyn moodlestack_model::Cloud,
) -> anyhow::Result<Vec<moodlestack_model::Resource>> {
    let image = resolve_image(stack, cloud).await?;
    Ok(moodlestack_graph::build(stack, &image)?)
}
