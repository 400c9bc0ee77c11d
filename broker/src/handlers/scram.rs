//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): SCRAM users
//! managed over the wire, as `kafka-configs --alter --add-config SCRAM-SHA-512=[…]` does.
//! Upsertions carry the salted password the client computed; the broker keeps only the
//! keys derived from it.

use super::str_bytes;
use crate::config::Mechanism;
use crate::security::{CredentialChange, Hash, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The wire's ScramMechanism codes.
fn mechanism_of(code: i8) -> Option<Mechanism> {
    match code {
        1 => Some(Mechanism::ScramSha256),
        2 => Some(Mechanism::ScramSha512),
        _ => None,
    }
}

fn code_of(m: Mechanism) -> i8 {
    match m {
        Mechanism::ScramSha256 => 1,
        Mechanism::ScramSha512 => 2,
        _ => 0,
    }
}

pub(crate) fn describe(
    state: &Arc<State>,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let creds = &state.credentials;
    let asked: Vec<String> = match req.users {
        Some(users) if !users.is_empty() => users.iter().map(|u| u.name.to_string()).collect(),
        _ => creds.users(),
    };
    let mut seen = HashSet::new();
    let duplicates: HashSet<&String> = asked.iter().filter(|u| !seen.insert(*u)).collect();
    let mut resp = DescribeUserScramCredentialsResponse::default();
    let mut done = HashSet::new();
    for user in &asked {
        if !done.insert(user) {
            continue;
        }
        let mut r = DescribeUserScramCredentialsResult::default();
        r.user = str_bytes(user.clone());
        if duplicates.contains(user) {
            r.error_code = ResponseError::DuplicateResource.code();
            r.error_message = Some(str_bytes(format!(
                "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
            )));
        } else {
            match creds.describe(user) {
                Some(list) => {
                    r.credential_infos = list
                        .into_iter()
                        .map(|(m, iterations)| {
                            let mut i = CredentialInfo::default();
                            i.mechanism = code_of(m);
                            i.iterations = iterations;
                            i
                        })
                        .collect();
                }
                None => {
                    r.error_code = ResponseError::ResourceNotFound.code();
                    r.error_message = Some(str_bytes(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )));
                }
            }
        }
        resp.results.push(r);
    }
    resp
}

type Failure = (ResponseError, String);

/// Checks one upsertion and turns it into the stored credential.
fn upsertion(
    u: &alter_user_scram_credentials_request::ScramCredentialUpsertion,
) -> Result<CredentialChange, Failure> {
    let mechanism = mechanism_of(u.mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".to_string(),
    ))?;
    let unacceptable = |why: &str| (ResponseError::UnacceptableCredential, why.to_string());
    if u.iterations < MIN_ITERATIONS {
        return Err(unacceptable("Too few iterations"));
    }
    if u.iterations > MAX_ITERATIONS {
        return Err(unacceptable("Too many iterations"));
    }
    if u.salt.is_empty() {
        return Err(unacceptable("Salt must not be empty"));
    }
    let hash = Hash::of(mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".to_string(),
    ))?;
    if u.salted_password.len() != hash.len() {
        return Err(unacceptable(
            "The salted password is not the mechanism's hash length",
        ));
    }
    let cred = hash.credential(&u.salted_password, u.salt.to_vec(), u.iterations);
    Ok(CredentialChange::Upsert(mechanism, cred))
}

pub(crate) fn alter(
    state: &Arc<State>,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let creds = &state.credentials;
    // Each user's changes in request order, or the first reason to refuse them all.
    let mut by_user: BTreeMap<String, Result<Vec<CredentialChange>, Failure>> = BTreeMap::new();
    let mut pairs = HashSet::new();
    let mut add = |user: &str, mechanism: i8, change: Result<CredentialChange, Failure>| {
        let entry = by_user
            .entry(user.to_string())
            .or_insert_with(|| Ok(Vec::new()));
        let duplicate = !pairs.insert((user.to_string(), mechanism));
        if let Ok(list) = entry {
            if user.is_empty() {
                *entry = Err((
                    ResponseError::UnacceptableCredential,
                    "Username must not be empty".into(),
                ));
            } else if duplicate {
                *entry = Err((
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".into(),
                ));
            } else {
                match change {
                    Ok(c) => list.push(c),
                    Err(e) => *entry = Err(e),
                }
            }
        }
    };
    for d in &req.deletions {
        let user = d.name.as_str();
        let change = match mechanism_of(d.mechanism) {
            None => Err((
                ResponseError::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism".into(),
            )),
            Some(m) if !creds.has(user, m) => Err((
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".into(),
            )),
            Some(m) => Ok(CredentialChange::Delete(m)),
        };
        add(user, d.mechanism, change);
    }
    for u in &req.upsertions {
        add(u.name.as_str(), u.mechanism, upsertion(u));
    }
    let mut resp = AlterUserScramCredentialsResponse::default();
    for (user, changes) in by_user {
        let mut r = AlterUserScramCredentialsResult::default();
        let outcome = changes.and_then(|list| {
            creds
                .change(&user, &list)
                .map_err(|e| (ResponseError::UnknownServerError, e.to_string()))
        });
        if let Err((code, why)) = outcome {
            r.error_code = code.code();
            r.error_message = Some(str_bytes(why));
        }
        r.user = str_bytes(user);
        resp.results.push(r);
    }
    resp
}
