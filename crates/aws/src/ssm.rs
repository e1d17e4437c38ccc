//! SSM: parameters (AMI ids from public parameters) and the stack's apply lease.
//!
//! The lease is the SSM parameter `Scope::lease_parameter()` (`/moodlestack/<stack>/lease`)
//! holding JSON `{owner, acquired_at, expires_at}` (seconds since the epoch), tagged with the
//! stack. Acquiring creates it with `Overwrite=false`, which only one caller can win. An expired
//! lease is taken over under a claim: the taker first creates the claim parameter
//! `<lease>-takeover-<id of the expired lease>` (again `Overwrite=false`, so one taker per expired
//! lease), checks the lease is still that expired one, deletes it, creates its own with
//! `Overwrite=false`, and drops the claim. Without the claim, two takers could both delete and
//! the second would delete the first one's fresh lease. The holder renews its own unexpired
//! lease in place (same `acquired_at`, new expiry).

use crate::fields::{answer, api_err};
use crate::Clients;
use aws_sdk_ssm::types::{ParameterType, Tag};
use moodlestack_model::cloud::unix_now as now;
use moodlestack_model::{value::sha256_hex, CloudError, LeaseInfo, Scope, TAG_STACK};
use std::time::Duration;

/// The holder's own lease is renewed in place while it has more than this left; closer to its
/// expiry it is taken over like an expired one (so a renewal never overwrites a lease another
/// apply has just taken over).
const RENEW_MARGIN_SECS: u64 = 5;

/// A claim older than this is from a taker that crashed mid-takeover and may be removed.
const STALE_CLAIM_SECS: u64 = 120;

/// Reads a parameter (decrypted if it is a SecureString).
pub async fn get_parameter(c: &Clients, name: &str) -> Result<String, CloudError> {
    match read(c, name).await? {
        Some(v) => Ok(v),
        None => Err(CloudError::NotFound(format!(
            "SSM parameter {name} (check the region, and that the image setting names a parameter \
             that exists there)"
        ))),
    }
}

/// The parameter's value, None if it does not exist.
async fn read(c: &Clients, name: &str) -> Result<Option<String>, CloudError> {
    let out = c
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await;
    match out.map_err(|e| api_err("ssm:GetParameter", e)) {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
        Err(CloudError::Api { code, .. }) if code == "ParameterNotFound" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the parameter unless it exists: true if this call created it.
async fn create(c: &Clients, scope: &Scope, name: &str, value: &str) -> Result<bool, CloudError> {
    let tag = Tag::builder()
        .key(TAG_STACK)
        .value(&scope.stack)
        .build()
        .map_err(|e| CloudError::UnexpectedAnswer {
            operation: "ssm:PutParameter".into(),
            what: format!("tag: {e}"),
        })?;
    let out = c
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(false)
        .tags(tag)
        .description(format!("moodlestack apply lease of stack {}", scope.stack))
        .send()
        .await;
    match out.map_err(|e| api_err("ssm:PutParameter", e)) {
        Ok(_) => Ok(true),
        Err(CloudError::Api { code, .. }) if code == "ParameterAlreadyExists" => Ok(false),
        Err(e) => Err(e),
    }
}

async fn delete(c: &Clients, name: &str) -> Result<(), CloudError> {
    let out = c.ssm.delete_parameter().name(name).send().await;
    match out.map_err(|e| api_err("ssm:DeleteParameter", e)) {
        Ok(_) => Ok(()),
        Err(CloudError::Api { code, .. }) if code == "ParameterNotFound" => Ok(()),
        Err(e) => Err(e),
    }
}

/// A lease as stored; an unreadable value counts as an expired lease.
fn parse(value: &str) -> LeaseInfo {
    serde_json::from_str(value).unwrap_or(LeaseInfo {
        owner: format!("(unreadable lease: {value:?})"),
        acquired_at: 0,
        expires_at: 0,
    })
}

async fn read_lease(c: &Clients, name: &str) -> Result<Option<LeaseInfo>, CloudError> {
    Ok(read(c, name).await?.map(|v| parse(&v)))
}

fn lease_name(scope: &Scope) -> String {
    scope.lease_parameter()
}

/// The claim that serializes takeovers of one particular (expired) lease.
fn claim_name(lease: &str, held: &LeaseInfo) -> String {
    let who = sha256_hex(format!("{}\n{}", held.owner, held.acquired_at).as_bytes());
    format!("{lease}-takeover-{}", &who[..16])
}

pub async fn acquire_lease(
    c: &Clients,
    scope: &Scope,
    owner: &str,
    ttl: Duration,
) -> Result<LeaseInfo, CloudError> {
    let name = lease_name(scope);
    let at = now();
    let mine = LeaseInfo {
        owner: owner.to_string(),
        acquired_at: at,
        expires_at: at + ttl.as_secs().max(1),
    };
    let json = serde_json::to_string(&mine).map_err(|e| CloudError::UnexpectedAnswer {
        operation: "ssm:PutParameter".into(),
        what: e.to_string(),
    })?;
    // A lease that vanishes between our create and read (released) is retried once.
    for _ in 0..2 {
        if create(c, scope, &name, &json).await? {
            return Ok(mine);
        }
        let Some(held) = read_lease(c, &name).await? else {
            continue;
        };
        if held.expires_at > at && held.owner != owner {
            return Err(CloudError::LeaseHeld(held));
        }
        if held.expires_at > at + RENEW_MARGIN_SECS {
            // Our own, still valid lease: renewed in place (no moment without a lease).
            return renew(c, &name, &held, &mine).await;
        }
        // Expired (or this owner's own, about to expire): take it over.
        return take_over(c, scope, &name, &held, &mine, &json).await;
    }
    match read_lease(c, &name).await? {
        Some(held) => Err(CloudError::LeaseHeld(held)),
        None => Err(CloudError::UnexpectedAnswer {
            operation: "ssm:GetParameter".into(),
            what: format!(
                "the lease {name} keeps appearing and disappearing: another apply is racing for it"
            ),
        }),
    }
}

/// Extends the holder's own lease: the same `acquired_at`, a new expiry.
async fn renew(
    c: &Clients,
    name: &str,
    held: &LeaseInfo,
    mine: &LeaseInfo,
) -> Result<LeaseInfo, CloudError> {
    let renewed = LeaseInfo {
        acquired_at: held.acquired_at,
        ..mine.clone()
    };
    let json = serde_json::to_string(&renewed).map_err(|e| CloudError::UnexpectedAnswer {
        operation: "ssm:PutParameter".into(),
        what: e.to_string(),
    })?;
    // Overwrite cannot carry tags; the parameter keeps the ones it was created with.
    answer(
        "ssm:PutParameter",
        c.ssm
            .put_parameter()
            .name(name)
            .value(json)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send(),
    )
    .await?;
    Ok(renewed)
}

/// Takes over the expired lease `held`: lifts it ([`break_lease`]) and creates this one.
async fn take_over(
    c: &Clients,
    scope: &Scope,
    name: &str,
    held: &LeaseInfo,
    mine: &LeaseInfo,
    json: &str,
) -> Result<LeaseInfo, CloudError> {
    if !break_lease(c, scope, held).await? {
        let current = read_lease(c, name).await?.unwrap_or_else(|| held.clone());
        return Err(CloudError::LeaseHeld(current));
    }
    if create(c, scope, name, json).await? {
        Ok(mine.clone())
    } else {
        let current = read_lease(c, name).await?.unwrap_or_else(|| held.clone());
        Err(CloudError::LeaseHeld(current))
    }
}

/// The stack's lease as stored, expired or not.
pub async fn lease(c: &Clients, scope: &Scope) -> Result<Option<LeaseInfo>, CloudError> {
    read_lease(c, &lease_name(scope)).await
}

/// Deletes the lease if it is still `held`, under the claim of that lease (one taker per lease):
/// true if it is gone now.
pub async fn break_lease(c: &Clients, scope: &Scope, held: &LeaseInfo) -> Result<bool, CloudError> {
    let at = now();
    let name = lease_name(scope);
    let claim = claim_name(&name, held);
    let claim_value = serde_json::json!({ "at": at }).to_string();
    let mut claimed = create(c, scope, &claim, &claim_value).await?;
    if !claimed {
        // Another taker holds the claim; it may have crashed mid-takeover long ago.
        let stale = read(c, &claim)
            .await?
            .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
            .and_then(|v| v.get("at").and_then(serde_json::Value::as_u64))
            .is_some_and(|claimed_at| claimed_at + STALE_CLAIM_SECS < at);
        if stale {
            delete(c, &claim).await?;
            claimed = create(c, scope, &claim, &claim_value).await?;
        }
    }
    if !claimed {
        return Ok(false);
    }
    let result = async {
        match read_lease(c, &name).await? {
            Some(still) if &still == held => delete(c, &name).await.map(|()| true),
            Some(_) => Ok(false),
            None => Ok(true),
        }
    }
    .await;
    delete(c, &claim).await?;
    result
}

/// Deletes the lease if `owner` holds it; anything else (gone, another owner) is left alone.
pub async fn release_lease(c: &Clients, scope: &Scope, owner: &str) -> Result<(), CloudError> {
    let name = lease_name(scope);
    match read_lease(c, &name).await? {
        Some(held) if held.owner == owner => delete(c, &name).await,
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_json_round_trips_and_garbage_counts_as_expired() {
        let l = LeaseInfo {
            owner: "ann@box pid 7".into(),
            acquired_at: 10,
            expires_at: 70,
        };
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(
            json,
            r#"{"owner":"ann@box pid 7","acquired_at":10,"expires_at":70}"#
        );
        assert_eq!(parse(&json), l);
        assert_eq!(parse("{not json").expires_at, 0);
    }

    #[test]
    fn claims_differ_per_expired_lease() {
        let a = LeaseInfo {
            owner: "a".into(),
            acquired_at: 1,
            expires_at: 2,
        };
        let b = LeaseInfo {
            owner: "a".into(),
            acquired_at: 3,
            expires_at: 4,
        };
        let n = "/moodlestack/demo/lease";
        assert!(claim_name(n, &a).starts_with("/moodlestack/demo/lease-takeover-"));
        assert_ne!(claim_name(n, &a), claim_name(n, &b));
    }
}
