//! Fetching distinct targets: batched where AWS allows it, concurrent and
//! bounded everywhere, every request under the call's deadline.
//!
//! - Current versions of secrets: `BatchGetSecretValue`, 20 ids a request,
//!   requests concurrent. Per-id errors in a reply map to their ids; an id
//!   the reply does not mention is fetched on its own. A batch refused as a
//!   whole (the policy allows `GetSecretValue` but not the batch call) falls
//!   back to `GetSecretValue` per id.
//! - Other versions: `GetSecretValue` with `VersionStage` or `VersionId`.
//! - Parameters: `GetParameters` with decryption, 10 names a request;
//!   names listed as invalid are not found.
//! - An ARN naming another region than the configured one is asked in that
//!   region; batches are grouped by region.
//! - A request that fails as a whole gives each of its secrets the error,
//!   worded with the secret's own name.

use std::collections::HashMap;

use backend_core::{Context, HandleError, Secret, bounded};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::api::{ApiError, Service};
use crate::client::Clients;
use crate::errors;
use crate::handle::{Target, Version};

/// Most ids in one `BatchGetSecretValue` (the API's limit).
pub const SECRETS_PER_BATCH: usize = 20;
/// Most names in one `GetParameters` (the API's limit).
pub const PARAMETERS_PER_BATCH: usize = 10;

/// A target's fetched value (the whole secret string or parameter value).
pub type Fetched = Result<Secret, HandleError>;

/// Fetches every target once; results in the order of `targets`.
pub async fn fetch_all(
    clients: &Clients,
    targets: &[&Target],
    ctx: &Context,
    concurrency: usize,
    batch_get: bool,
) -> Vec<Fetched> {
    let mut current = Vec::new();
    let mut versioned = Vec::new();
    let mut parameters = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match t {
            Target::Secret { id, version: None } => current.push((i, id.as_str())),
            Target::Secret {
                id,
                version: Some(v),
            } => versioned.push((i, id.as_str(), Some(v))),
            Target::Parameter(name) => parameters.push((i, name.as_str())),
        }
    }
    let mut results: Vec<Option<Fetched>> = targets.iter().map(|_| None).collect();

    // Batches, versioned secrets and parameters go in parallel, each kind
    // bounded by `concurrency`; ids a batch could not answer follow.
    let secrets = async {
        if !batch_get {
            versioned.extend(current.iter().map(|&(i, id)| (i, id, None)));
            current.clear();
        }
        let ((mut done, left), single) = tokio::join!(
            batches(clients, &current, ctx, concurrency),
            singles_fetch(clients, &versioned, ctx, concurrency)
        );
        let left: Vec<_> = left.into_iter().map(|(i, id)| (i, id, None)).collect();
        done.extend(single);
        done.extend(singles_fetch(clients, &left, ctx, concurrency).await);
        done
    };
    let params = parameter_batches(clients, &parameters, ctx, concurrency);
    let (secrets, params) = tokio::join!(secrets, params);
    for (i, fetched) in secrets.into_iter().chain(params) {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(fetched);
        }
    }
    results
        .into_iter()
        .zip(targets)
        .map(|(r, t)| r.unwrap_or_else(|| Err(ctx.timed_out().context(t.location()))))
        .collect()
}

/// Runs the batches (ids grouped by the region their ARN names, then 20 a
/// request); returns what they answered and the ids left for
/// `GetSecretValue` (refused batches, ids missing from a reply).
async fn batches<'a>(
    clients: &Clients,
    ids: &[(usize, &'a str)],
    ctx: &Context,
    concurrency: usize,
) -> (Vec<(usize, Fetched)>, Vec<(usize, &'a str)>) {
    let groups = by_region(clients, ids);
    let chunks: Vec<&[(usize, &str)]> = groups
        .iter()
        .flat_map(|g| g.chunks(SECRETS_PER_BATCH))
        .collect();
    let replies = bounded(&chunks, concurrency, ctx, |chunk| {
        batch_get(clients, chunk, ctx)
    })
    .await;
    let mut done = Vec::new();
    let mut left = Vec::new();
    for (chunk, reply) in chunks.iter().zip(replies) {
        match reply {
            Ok(BatchReply::Answered(results)) => {
                for (&(i, id), r) in chunk.iter().zip(results) {
                    match r {
                        Some(fetched) => done.push((i, fetched)),
                        None => left.push((i, id)),
                    }
                }
            }
            Ok(BatchReply::Refused) => left.extend(chunk.iter().copied()),
            Ok(BatchReply::Failed(e)) => done.extend(
                chunk
                    .iter()
                    .map(|&(i, id)| (i, Err(errors::from_api(&e, id)))),
            ),
            Err(e) => done.extend(chunk.iter().map(|&(i, id)| (i, Err(e.clone().context(id))))),
        }
    }
    (done, left)
}

/// Items grouped by the region their requests go to, each group in its
/// original order.
fn by_region<'a>(clients: &Clients, items: &[(usize, &'a str)]) -> Vec<Vec<(usize, &'a str)>> {
    let (regions, of_item) = backend_core::group(items.iter().map(|(_, id)| clients.region_of(id)));
    let mut groups: Vec<Vec<(usize, &str)>> = regions.iter().map(|_| Vec::new()).collect();
    for (item, g) in items.iter().zip(of_item) {
        if let Some(group) = groups.get_mut(g) {
            group.push(*item);
        }
    }
    groups
}

enum BatchReply {
    /// Per id: its result, or `None` when the reply did not mention it.
    Answered(Vec<Option<Fetched>>),
    /// The caller may not use the batch call: fetch one by one.
    Refused,
    /// The request failed as a whole (each id gets the error, by name).
    Failed(ApiError),
}

async fn batch_get(
    clients: &Clients,
    chunk: &[(usize, &str)],
    ctx: &Context,
) -> Result<BatchReply, HandleError> {
    let ids: Vec<&str> = chunk.iter().map(|(_, id)| *id).collect();
    // A chunk holds one region's ids: its first id picks the region.
    let region = clients.region_of(ids.first().copied().unwrap_or_default());
    let mut answers: Vec<Option<Fetched>> = chunk.iter().map(|_| None).collect();
    let mut token: Option<String> = None;
    // A reply may be paged; follow the token, bounded by the number of ids.
    for _ in 0..=chunk.len() {
        let mut body = json!({ "SecretIdList": ids });
        if let Some(t) = &token {
            body["NextToken"] = Value::from(t.as_str());
        }
        let reply = clients
            .api
            .call(
                Service::SecretsManager,
                region,
                "BatchGetSecretValue",
                &body,
                ctx,
            )
            .await;
        let out = match reply {
            Ok(out) => out,
            // Refused as a whole: denied by policy, or one id the batch call
            // rejects; one by one, each id gets its own answer.
            Err(e) if e.code().is_some_and(is_refusal) => {
                tracing::debug!(
                    "BatchGetSecretValue refused ({}), falling back to GetSecretValue",
                    errors::shown_code(e.code().unwrap_or_default())
                );
                return Ok(BatchReply::Refused);
            }
            Err(e) => return Ok(BatchReply::Failed(e)),
        };
        if let Some(Value::Array(entries)) = out.get("SecretValues") {
            for entry in entries {
                for (slot, (_, id)) in answers.iter_mut().zip(chunk) {
                    if slot.is_none() && entry_matches(entry, id) {
                        *slot = Some(entry_value(id, entry));
                    }
                }
            }
        }
        if let Some(Value::Array(errs)) = out.get("Errors") {
            for err in errs {
                let Some(sid) = err.get("SecretId").and_then(Value::as_str) else {
                    continue;
                };
                for (slot, (_, id)) in answers.iter_mut().zip(chunk) {
                    if slot.is_none() && *id == sid {
                        // The batch call itself succeeded: no HTTP status
                        // belongs to this id's error.
                        *slot = Some(Err(errors::from_code(
                            err.get("ErrorCode")
                                .and_then(Value::as_str)
                                .unwrap_or("UnknownError"),
                            err.get("Message").and_then(Value::as_str),
                            None,
                            id,
                        )));
                    }
                }
            }
        }
        token = out
            .get("NextToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if token.is_none() || answers.iter().all(Option::is_some) {
            break;
        }
    }
    Ok(BatchReply::Answered(answers))
}

fn is_refusal(code: &str) -> bool {
    matches!(
        code,
        "AccessDeniedException"
            | "AccessDenied"
            | "UnauthorizedOperation"
            | "ValidationException"
            | "InvalidParameterException"
            | "InvalidRequestException"
    )
}

/// Whether a batch entry answers the requested `id`: by name, by full ARN,
/// or by a partial ARN (an ARN without the random six-character suffix).
fn entry_matches(entry: &Value, id: &str) -> bool {
    let arn = entry.get("ARN").and_then(Value::as_str);
    entry.get("Name").and_then(Value::as_str) == Some(id)
        || arn == Some(id)
        || arn.is_some_and(|arn| {
            id.starts_with("arn:")
                && arn.len() == id.len() + 7
                && arn.starts_with(id)
                && arn.as_bytes().get(id.len()) == Some(&b'-')
        })
}

async fn singles_fetch(
    clients: &Clients,
    items: &[(usize, &str, Option<&Version>)],
    ctx: &Context,
    concurrency: usize,
) -> Vec<(usize, Fetched)> {
    let results = bounded(items, concurrency, ctx, |(_, id, version)| {
        get_secret(clients, id, *version, ctx)
    })
    .await;
    items
        .iter()
        .zip(results)
        .map(|(&(i, id, version), r)| {
            let r = r.map_err(|e| {
                if e.kind() == backend_core::ErrorKind::TimedOut {
                    e.context(location(id, version))
                } else {
                    e
                }
            });
            (i, r)
        })
        .collect()
}

fn location(id: &str, version: Option<&Version>) -> String {
    Target::Secret {
        id: id.to_owned(),
        version: version.cloned(),
    }
    .location()
}

async fn get_secret(
    clients: &Clients,
    id: &str,
    version: Option<&Version>,
    ctx: &Context,
) -> Result<Secret, HandleError> {
    let mut body = json!({ "SecretId": id });
    match version {
        Some(Version::Stage(s)) => body["VersionStage"] = Value::from(s.as_str()),
        Some(Version::Id(v)) => body["VersionId"] = Value::from(v.as_str()),
        None => {}
    }
    let at = location(id, version);
    let out = clients
        .api
        .call(
            Service::SecretsManager,
            clients.region_of(id),
            "GetSecretValue",
            &body,
            ctx,
        )
        .await
        .map_err(|e| errors::from_api(&e, &at))?;
    entry_value(&at, &out)
}

/// The value of a secret (an answer of `GetSecretValue` or an entry of
/// `BatchGetSecretValue`): its `SecretString` (copied: a name and an ARN
/// in one batch may both name the entry), or its `SecretBinary` when that
/// is UTF-8.
fn entry_value(location: &str, entry: &Value) -> Fetched {
    if let Some(s) = entry.get("SecretString").and_then(Value::as_str) {
        return Ok(Secret::from(s));
    }
    let Some(binary) = entry.get("SecretBinary").and_then(Value::as_str) else {
        return Err(HandleError::not_found(format!(
            "{location}: the secret has no value"
        )));
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(binary) else {
        return Err(HandleError::unavailable(format!(
            "{location}: unreadable response from the AWS endpoint (SecretBinary is not base64)"
        )));
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Secret::new(text)),
        Err(e) => {
            let len = e.as_bytes().len();
            zeroize::Zeroize::zeroize(&mut e.into_bytes());
            Err(HandleError::other(format!(
                "{location}: the secret is binary ({len} bytes) and not UTF-8 text, which the \
                 agent cannot take"
            )))
        }
    }
}

async fn parameter_batches(
    clients: &Clients,
    names: &[(usize, &str)],
    ctx: &Context,
    concurrency: usize,
) -> Vec<(usize, Fetched)> {
    let groups = by_region(clients, names);
    let rounds: Vec<Vec<(usize, &str)>> = groups.iter().flat_map(|g| rounds(g)).collect();
    let chunks: Vec<&[(usize, &str)]> = rounds
        .iter()
        .flat_map(|r| r.chunks(PARAMETERS_PER_BATCH))
        .collect();
    let replies = bounded(&chunks, concurrency, ctx, |chunk| {
        get_parameters(clients, chunk, ctx)
    })
    .await;
    let mut out = Vec::new();
    for (chunk, reply) in chunks.iter().zip(replies) {
        match reply {
            Ok(Ok(results)) => out.extend(chunk.iter().map(|(i, _)| *i).zip(results)),
            Ok(Err(e)) => out.extend(chunk.iter().map(|&(i, name)| {
                (
                    i,
                    Err(errors::from_api(
                        &e,
                        &Target::Parameter(name.into()).location(),
                    )),
                )
            })),
            Err(e) => out.extend(chunk.iter().map(|&(i, name)| {
                (
                    i,
                    Err(e.clone().context(Target::Parameter(name.into()).location())),
                )
            })),
        }
    }
    out
}

/// A parameter name or ARN split into the parameter and its selector:
/// `/app/pw:3` is `/app/pw` at version 3, `/app/pw:prod` at label `prod`
/// (names never hold `:`; in an ARN the selector follows `parameter/...`).
fn selector_split(name: &str) -> (&str, Option<&str>) {
    let start = if name.starts_with("arn:") {
        name.find(":parameter/")
            .map_or(0, |i| i + ":parameter/".len())
    } else {
        0
    };
    match name.get(start..).and_then(|rest| rest.find(':')) {
        Some(at) => (
            name.get(..start + at).unwrap_or(name),
            name.get(start + at + 1..),
        ),
        None => (name, None),
    }
}

/// Which parameter a name or ARN is, ignoring how it is written (name or
/// ARN, with or without the leading `/`) and its selector: what two
/// requests of one GetParameters call must not share.
fn parameter_key(name: &str) -> &str {
    let base = selector_split(name).0;
    let bare = match base.find(":parameter/") {
        Some(i) if base.starts_with("arn:") => base.get(i + ":parameter/".len()..).unwrap_or(base),
        _ => base,
    };
    bare.trim_start_matches('/')
}

/// `items` in rounds in which no parameter is asked at two selectors:
/// GetParameters answers `/app/pw` and `/app/pw:1` both under the name
/// `/app/pw`, so a call asking for both could not tell which answer is
/// which. The k-th selector of a parameter goes to round k (its name and
/// its ARN at one selector share a round); nearly every call is one round.
fn rounds<'a>(items: &[(usize, &'a str)]) -> Vec<Vec<(usize, &'a str)>> {
    // The round of each (parameter, selector), and how many selectors of
    // each parameter have one: constant time per item, whatever their count.
    let mut round_of: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    let mut selectors: HashMap<&str, usize> = HashMap::new();
    let mut rounds: Vec<Vec<(usize, &str)>> = Vec::new();
    for &(i, name) in items {
        let key = parameter_key(name);
        let n = *round_of
            .entry((key, selector_split(name).1))
            .or_insert_with(|| {
                let count = selectors.entry(key).or_insert(0);
                *count += 1;
                *count - 1
            });
        if rounds.len() <= n {
            rounds.resize_with(n + 1, Vec::new);
        }
        if let Some(round) = rounds.get_mut(n) {
            round.push((i, name));
        }
    }
    rounds
}

/// Whether `p`, from a GetParameters reply, answers the request `name`: its
/// name or ARN is the one asked for, and its selector (or, where a server
/// names none, its version) is the one asked for. The chunk asks for each
/// parameter once ([`rounds`]), so at most one answer fits.
fn answers(p: &Value, name: &str) -> bool {
    let (base, selector) = selector_split(name);
    let text = |key: &str| p.get(key).and_then(Value::as_str);
    let named = [text("Name"), text("ARN")]
        .into_iter()
        .flatten()
        .any(|n| n == name || n == base);
    if !named {
        return false;
    }
    match (selector, text("Selector")) {
        (Some(asked), Some(got)) => got.strip_prefix(':').unwrap_or(got) == asked,
        (Some(asked), None) => asked.parse::<i64>().map_or(true, |v| {
            p.get("Version").and_then(Value::as_i64) == Some(v)
        }),
        (None, Some(_)) => false,
        (None, None) => true,
    }
}

/// The per-name results, or the error of the whole request (mapped per
/// name by the caller, so that each message names its parameter).
type ParametersReply = Result<Vec<Fetched>, ApiError>;

async fn get_parameters(
    clients: &Clients,
    chunk: &[(usize, &str)],
    ctx: &Context,
) -> Result<ParametersReply, HandleError> {
    let names: Vec<&str> = chunk.iter().map(|(_, n)| *n).collect();
    let region = clients.region_of(names.first().copied().unwrap_or_default());
    let body = json!({ "Names": names, "WithDecryption": true });
    let out = match clients
        .api
        .call(Service::Ssm, region, "GetParameters", &body, ctx)
        .await
    {
        Ok(out) => out,
        Err(e) => return Ok(Err(e)),
    };
    let invalid: Vec<String> = match out.get("InvalidParameters") {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let parameters = match out.get("Parameters") {
        Some(Value::Array(ps)) => ps.as_slice(),
        _ => &[],
    };
    Ok(Ok(chunk
        .iter()
        .map(|(_, name)| {
            let at = Target::Parameter((*name).to_owned()).location();
            let found = parameters.iter().find(|p| answers(p, name));
            match found.and_then(|p| p.get("Value")).and_then(Value::as_str) {
                Some(v) => Ok(Secret::from(v)),
                _ if invalid.iter().any(|n| n == name) => {
                    Err(HandleError::not_found(format!("{at}: not found")))
                }
                _ => Err(HandleError::not_found(format!(
                    "{at}: not in the GetParameters reply"
                ))),
            }
        })
        .collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_split_off_names_and_arns() {
        assert_eq!(selector_split("/app/pw"), ("/app/pw", None));
        assert_eq!(selector_split("/app/pw:3"), ("/app/pw", Some("3")));
        assert_eq!(selector_split("noslash:prod"), ("noslash", Some("prod")));
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/pw";
        assert_eq!(selector_split(arn), (arn, None));
        assert_eq!(selector_split(&format!("{arn}:2")), (arn, Some("2")));
        assert_eq!(parameter_key(arn), "app/pw");
        assert_eq!(parameter_key("/app/pw:1"), "app/pw");
        assert_eq!(parameter_key("app/pw"), "app/pw");
    }

    /// As AWS answers: the bare name, the ARN without selector, and the
    /// selector apart (moto names no selector; its version then decides).
    #[test]
    fn an_answer_fits_the_selector_asked() {
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/pw";
        let p = |selector: Option<&str>, version: i64| {
            let mut p = json!({ "Name": "/app/pw", "ARN": arn, "Version": version, "Value": "v" });
            if let Some(s) = selector {
                p["Selector"] = Value::from(s);
            }
            p
        };
        let v1 = p(Some(":1"), 1);
        let label = p(Some(":prod"), 2);
        let latest = p(None, 3);
        assert!(answers(&v1, "/app/pw:1"));
        assert!(answers(&v1, &format!("{arn}:1")));
        assert!(!answers(&v1, "/app/pw"));
        assert!(!answers(&v1, "/app/pw:2"));
        assert!(answers(&label, "/app/pw:prod"));
        assert!(!answers(&label, "/app/pw:2"));
        assert!(answers(&latest, "/app/pw"));
        assert!(answers(&latest, arn));
        assert!(answers(&latest, "/app/pw:3"));
        assert!(!answers(&latest, "/app/pw:1"));
        assert!(!answers(&latest, "/app/other"));
    }

    #[test]
    fn one_parameter_per_round() {
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/pw";
        let items = [
            (0, "/app/pw"),
            (1, "/app/pw:1"),
            (2, "/other"),
            (3, arn),
            (4, "/app/pw:2"),
        ];
        let r = rounds(&items);
        assert_eq!(r.len(), 3);
        // Many selectors of one parameter: one round each.
        let many: Vec<String> = (0..50_000).map(|v| format!("/p:{v}")).collect();
        let items: Vec<(usize, &str)> = many.iter().map(String::as_str).enumerate().collect();
        let r = rounds(&items);
        assert_eq!(r.len(), 50_000);
        assert_eq!(r[49_999], vec![(49_999, "/p:49999")]);
        let r = rounds(&[
            (0, "/app/pw"),
            (1, "/app/pw:1"),
            (2, "/other"),
            (3, "arn:aws:ssm:us-east-1:123456789012:parameter/app/pw"),
            (4, "/app/pw:2"),
        ]);
        assert_eq!(r[0], vec![(0, "/app/pw"), (2, "/other"), (3, arn)]);
        assert_eq!(r[1], vec![(1, "/app/pw:1")]);
        assert_eq!(r[2], vec![(4, "/app/pw:2")]);
    }
}
