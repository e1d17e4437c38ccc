//! `moodlestack run`: a shell command on one of the stack's instances through SSM Run Command
//! (`AWS-RunShellScript`), no SSH. The instance is found by the stack's tags (running instances
//! with `moodlestack:stack` and the logical id asked for), the command is sent with
//! `SendCommand`, and `GetCommandInvocation` is polled for its status and output. The node role
//! carries `AmazonSSMManagedInstanceCore`, which lets the SSM agent take commands.
//!
//! AWS keeps the first 24,000 characters of standard output and 8,000 of standard error in the
//! invocation; more needs an S3 bucket or CloudWatch Logs, which `run` does not set up.

use crate::fields::api_err;
use crate::AwsCloud;
use moodlestack_model::{CloudError, Scope};

/// What `GetCommandInvocation` says about a command on one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invocation {
    /// `Pending`, `InProgress`, `Delayed`, `Success`, `Cancelled`, `TimedOut`, `Failed`,
    /// `Cancelling`, `Undeliverable`, `Terminated`, ...
    pub status: String,
    /// AWS's longer account of the status.
    pub status_details: String,
    /// The command's exit code (-1 while it runs or when it did not run).
    pub response_code: i32,
    /// Standard output so far (the first 24,000 characters).
    pub stdout: String,
    /// Standard error so far (the first 8,000 characters).
    pub stderr: String,
}

impl Invocation {
    /// Whether the command is still waiting or running.
    pub fn running(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Pending" | "InProgress" | "Delayed" | "Cancelling"
        )
    }
}

impl AwsCloud {
    /// The running instances of the stack with logical id `id` (tags `moodlestack:stack` and
    /// `moodlestack:id`).
    pub async fn running_instances(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.instance_ids(&scope.stack, id, &["running"]).await
    }

    /// Sends `command` to `instance_id` as an `AWS-RunShellScript` document (run by the SSM agent
    /// as root, in a shell); returns the command id. `timeout_secs` bounds its run
    /// (`executionTimeout`).
    pub async fn send_shell_command(
        &self,
        instance_id: &str,
        command: &str,
        comment: &str,
        timeout_secs: u64,
    ) -> Result<String, CloudError> {
        let out = self
            .clients()
            .ssm
            .send_command()
            .document_name("AWS-RunShellScript")
            .instance_ids(instance_id)
            .parameters("commands", vec![command.to_string()])
            .parameters("executionTimeout", vec![timeout_secs.to_string()])
            .comment(comment.chars().take(100).collect::<String>())
            .send()
            .await
            .map_err(|e| api_err("ssm:SendCommand", e))?;
        out.command()
            .and_then(|c| c.command_id())
            .map(str::to_string)
            .ok_or_else(|| CloudError::UnexpectedAnswer {
                operation: "ssm:SendCommand".into(),
                what: "no command id in the answer".into(),
            })
    }

    /// The command's invocation on `instance_id`; None while SSM does not know it yet (right
    /// after `SendCommand`, `InvocationDoesNotExist`).
    pub async fn command_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Option<Invocation>, CloudError> {
        let out = self
            .clients()
            .ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await
            .map_err(|e| api_err("ssm:GetCommandInvocation", e));
        match out {
            Ok(o) => Ok(Some(Invocation {
                status: o
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                status_details: o.status_details().unwrap_or_default().to_string(),
                response_code: o.response_code(),
                stdout: o.standard_output_content().unwrap_or_default().to_string(),
                stderr: o.standard_error_content().unwrap_or_default().to_string(),
            })),
            Err(CloudError::Api { code, .. }) if code == "InvocationDoesNotExist" => Ok(None),
            Err(e) => Err(e),
        }
    }
}
