//! STS: who the credentials are.

use crate::fields::answer;
use crate::fields::unexpected;
use crate::Clients;
use moodlestack_model::CloudError;

/// The account the credentials act in (GetCallerIdentity needs no permission).
pub(crate) async fn account_id(c: &Clients) -> Result<String, CloudError> {
    let out = answer("sts:GetCallerIdentity", c.sts.get_caller_identity().send()).await?;
    out.account()
        .map(str::to_string)
        .ok_or_else(|| unexpected("sts:GetCallerIdentity", "no account"))
}
