//! SCRAM credentials by user and mechanism, kept in the metadata store (table
//! `scram_credentials`, one row per user) and in memory for authentication.

use super::scram::ScramCredential;
use crate::config::Mechanism;
use crate::meta::{MetaError, MetaStore, Table, Write};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

const SCRAM_CREDENTIALS: Table = "scram_credentials";

/// A user's credentials by mechanism name.
type UserCredentials = BTreeMap<String, ScramCredential>;

/// One change AlterUserScramCredentials asks for.
#[derive(Debug, Clone)]
pub(crate) enum CredentialChange {
    Upsert(Mechanism, ScramCredential),
    Delete(Mechanism),
}

#[derive(Debug)]
pub(crate) struct Credentials {
    meta: Arc<MetaStore>,
    users: RwLock<BTreeMap<String, UserCredentials>>,
}

impl Credentials {
    pub(crate) fn open(meta: Arc<MetaStore>) -> Result<Self, MetaError> {
        let users = meta.load_json(SCRAM_CREDENTIALS)?.into_iter().collect();
        Ok(Self {
            meta,
            users: RwLock::new(users),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, UserCredentials>> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.read().get(user)?.get(mechanism.name()).cloned()
    }

    /// Any of a user's credentials (SASL/PLAIN checks a password against one).
    pub(crate) fn any(&self, user: &str) -> Option<(Mechanism, ScramCredential)> {
        let users = self.read();
        let creds = users.get(user)?;
        creds
            .iter()
            .find_map(|(m, c)| Mechanism::parse(m).map(|m| (m, c.clone())))
    }

    /// Users and, for each, its mechanisms and iterations; `None`: every user.
    pub(crate) fn describe(&self, user: &str) -> Option<Vec<(Mechanism, i32)>> {
        let users = self.read();
        let creds = users.get(user)?;
        Some(
            creds
                .iter()
                .filter_map(|(m, c)| Mechanism::parse(m).map(|m| (m, c.iterations)))
                .collect(),
        )
    }

    pub(crate) fn users(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Whether the user has a credential for `mechanism` (a deletion of one it has not is
    /// RESOURCE_NOT_FOUND).
    pub(crate) fn has(&self, user: &str, mechanism: Mechanism) -> bool {
        self.get(user, mechanism).is_some()
    }

    /// Gives `user` both SCRAM credentials for `password` (start-up seeding).
    pub(crate) fn seed(&self, user: &str, password: &str) -> Result<(), MetaError> {
        let changes: Vec<CredentialChange> = [Mechanism::ScramSha256, Mechanism::ScramSha512]
            .into_iter()
            .filter_map(|m| {
                let hash = super::scram::Hash::of(m)?;
                Some(CredentialChange::Upsert(
                    m,
                    hash.new_credential(password, super::scram::MIN_ITERATIONS),
                ))
            })
            .collect();
        self.change(user, &changes)
    }

    /// Applies one user's changes, all or none.
    pub(crate) fn change(&self, user: &str, changes: &[CredentialChange]) -> Result<(), MetaError> {
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        let mut creds = users.get(user).cloned().unwrap_or_default();
        for change in changes {
            match change {
                CredentialChange::Upsert(m, c) => {
                    creds.insert(m.name().to_string(), c.clone());
                }
                CredentialChange::Delete(m) => {
                    creds.remove(m.name());
                }
            }
        }
        let write = if creds.is_empty() {
            Write::Delete {
                table: SCRAM_CREDENTIALS,
                key: user.to_string(),
            }
        } else {
            self.meta.put_json(SCRAM_CREDENTIALS, user, &creds)?
        };
        self.meta.apply(&[write])?;
        if creds.is_empty() {
            users.remove(user);
        } else {
            users.insert(user.to_string(), creds);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::Hash;

    #[test]
    fn credentials_are_kept_per_user_and_mechanism() {
        let meta = Arc::new(MetaStore::memory());
        let creds = Credentials::open(meta.clone()).unwrap();
        let hash = Hash::of(Mechanism::ScramSha512).unwrap();
        let c = hash.new_credential("pw", 4096);
        creds
            .change(
                "alice",
                &[CredentialChange::Upsert(Mechanism::ScramSha512, c.clone())],
            )
            .unwrap();
        assert_eq!(creds.get("alice", Mechanism::ScramSha512), Some(c));
        assert!(!creds.has("alice", Mechanism::ScramSha256));
        let again = Credentials::open(meta).unwrap();
        assert_eq!(
            again.describe("alice"),
            Some(vec![(Mechanism::ScramSha512, 4096)])
        );
        again
            .change("alice", &[CredentialChange::Delete(Mechanism::ScramSha512)])
            .unwrap();
        assert!(again.users().is_empty());
    }
}
