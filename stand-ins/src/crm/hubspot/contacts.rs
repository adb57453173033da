//! The contacts HubSpot holds, and how a batch of [`Write`]s lands on them: in order, each
//! merged into its contact (last writer wins, no version guard), except that a unique value
//! (email, or a `hasUniqueValue` property) held by another contact fails that input with a
//! conflict. Archived contacts are kept for the admin view but found by nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::properties::{EMAIL_PROPERTY, OBJECT_ID_PROPERTY};
use super::upsert::Write;

/// The property whose every value written to a contact its history keeps.
pub const VERSION_PROPERTY: &str = "leadflow_version";
/// The first internal id handed out.
const FIRST_ID: u64 = 1001;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    pub properties: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub archived: bool,
    /// Every `leadflow_version` written to it, in apply order, however it moved.
    pub version_history: Vec<String>,
}

impl Contact {
    /// The contact as HubSpot's batch answers show it (`properties` chosen by the caller).
    pub fn api_json(&self, properties: Map<String, Value>) -> Value {
        serde_json::json!({"id": self.id, "properties": properties, "createdAt": rfc3339(self.created_at),
                           "updatedAt": rfc3339(self.updated_at), "archived": self.archived})
    }

    pub fn all_properties(&self) -> Map<String, Value> {
        self.properties.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect()
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// An input refused because a unique value belongs to another contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Its index in the batch.
    pub input: usize,
    pub property: String,
    /// The other contact's internal id.
    pub existing_id: String,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every input but the conflicting ones applied: the contacts after each, and whether the
    /// input created it.
    Applied { results: Vec<(Contact, bool)>, conflicts: Vec<Conflict> },
    /// All or nothing was asked and an input conflicted: nothing is applied.
    Refused(Conflict),
}

#[derive(Debug)]
pub struct Contacts {
    next_id: u64,
    by_id: BTreeMap<u64, Contact>,
    /// `(property, value)` to the live contact holding it, for every unique property.
    index: HashMap<(String, String), u64>,
    unique: BTreeSet<String>,
}

impl Contacts {
    /// `unique`: the properties whose values are unique among live contacts.
    pub fn new<'a>(unique: impl IntoIterator<Item = &'a str>) -> Self {
        let unique = unique.into_iter().map(str::to_owned).collect();
        Contacts { next_id: FIRST_ID, by_id: BTreeMap::new(), index: HashMap::new(), unique }
    }

    /// A property created with `hasUniqueValue`: no contact can hold a value of it yet.
    pub fn add_unique(&mut self, property: &str) {
        self.unique.insert(property.to_owned());
    }

    pub fn all(&self) -> impl Iterator<Item = &Contact> {
        self.by_id.values()
    }

    /// The live contact whose `property` is `value`, or whose internal id is `value` when there
    /// is no property.
    pub fn find(&self, property: Option<&str>, value: &str) -> Option<&Contact> {
        let id = match property {
            Some(property) => *self.index.get(&key(property, value))?,
            None => value.parse().ok()?,
        };
        self.by_id.get(&id).filter(|c| !c.archived)
    }

    /// Applies `writes` in order at `now`; with `all_or_nothing`, the first conflict undoes the
    /// batch.
    pub fn upsert(&mut self, writes: &[Write], now: OffsetDateTime, all_or_nothing: bool) -> Outcome {
        let next_id = self.next_id;
        let mut undo: Vec<(u64, Option<Contact>)> = Vec::new();
        let (mut results, mut conflicts) = (Vec::new(), Vec::new());
        for (input, write) in writes.iter().enumerate() {
            match self.upsert_one(write, now, &mut undo) {
                Ok(applied) => results.push(applied),
                Err((property, existing)) => {
                    let conflict = Conflict { input, property, existing_id: existing.to_string() };
                    if all_or_nothing {
                        self.undo(undo, next_id);
                        return Outcome::Refused(conflict);
                    }
                    conflicts.push(conflict);
                }
            }
        }
        Outcome::Applied { results, conflicts }
    }

    fn upsert_one(
        &mut self,
        write: &Write,
        now: OffsetDateTime,
        undo: &mut Vec<(u64, Option<Contact>)>,
    ) -> Result<(Contact, bool), (String, u64)> {
        let target = self.index.get(&key(&write.id_property, &write.id)).copied();
        let id = target.unwrap_or(self.next_id);
        let mut contact = match target {
            Some(id) => self.by_id[&id].clone(),
            None => Contact {
                id: id.to_string(),
                properties: BTreeMap::from([(OBJECT_ID_PROPERTY.to_owned(), id.to_string())]),
                created_at: now,
                updated_at: now,
                archived: false,
                version_history: Vec::new(),
            },
        };
        for (name, value) in &write.properties {
            match value {
                Some(value) => contact.properties.insert(name.clone(), value.clone()),
                None => contact.properties.remove(name),
            };
        }
        // The key the contact was found by is its value now, whatever `properties` said.
        contact.properties.insert(write.id_property.clone(), write.id.clone());
        for (name, value) in &contact.properties {
            if let Some(&holder) = self.index.get(&key(name, value))
                && holder != id
                && self.unique.contains(name)
            {
                return Err((name.clone(), holder));
            }
        }
        if let Some((_, Some(version))) = write.properties.iter().find(|(name, _)| name == VERSION_PROPERTY) {
            contact.version_history.push(version.clone());
        }
        contact.updated_at = now;
        undo.push((id, self.by_id.get(&id).cloned()));
        if target.is_none() {
            self.next_id += 1;
        }
        self.put(id, contact.clone());
        Ok((contact, target.is_none()))
    }

    /// A person's edit: `properties` merged (`None` clears), no checks. `None` when no live
    /// contact has that `leadflow_id` (or internal id).
    pub fn patch(
        &mut self,
        key: &str,
        properties: &[(String, Option<String>)],
        now: OffsetDateTime,
    ) -> Option<&Contact> {
        let id = self.admin_target(key)?;
        let mut contact = self.by_id[&id].clone();
        for (name, value) in properties {
            if name == VERSION_PROPERTY
                && let Some(version) = value
            {
                contact.version_history.push(version.clone());
            }
            match value {
                Some(value) => contact.properties.insert(name.clone(), value.clone()),
                None => contact.properties.remove(name),
            };
        }
        contact.updated_at = now;
        self.put(id, contact);
        self.by_id.get(&id)
    }

    /// A person's delete: the contact is archived, and its unique values are free again.
    pub fn archive(&mut self, key: &str, now: OffsetDateTime) -> bool {
        let Some(id) = self.admin_target(key) else { return false };
        let mut contact = self.by_id[&id].clone();
        (contact.archived, contact.updated_at) = (true, now);
        self.put(id, contact);
        true
    }

    fn admin_target(&self, key: &str) -> Option<u64> {
        let contact = self.find(Some("leadflow_id"), key).or_else(|| self.find(None, key))?;
        contact.id.parse().ok()
    }

    /// Replaces contact `id`, keeping the index in step.
    fn put(&mut self, id: u64, contact: Contact) {
        self.remove(id);
        if !contact.archived {
            for (name, value) in contact.properties.iter().filter(|(name, _)| self.unique.contains(*name)) {
                self.index.insert(key(name, value), id);
            }
        }
        self.by_id.insert(id, contact);
    }

    fn remove(&mut self, id: u64) {
        if let Some(old) = self.by_id.remove(&id) {
            for (name, value) in &old.properties {
                let k = key(name, value);
                if self.index.get(&k) == Some(&id) {
                    self.index.remove(&k);
                }
            }
        }
    }

    fn undo(&mut self, undo: Vec<(u64, Option<Contact>)>, next_id: u64) {
        for (id, before) in undo.into_iter().rev() {
            match before {
                Some(contact) => self.put(id, contact),
                None => self.remove(id),
            }
        }
        self.next_id = next_id;
    }
}

/// Emails are compared without case, as HubSpot does.
fn key(property: &str, value: &str) -> (String, String) {
    let value = if property == EMAIL_PROPERTY { value.to_lowercase() } else { value.to_owned() };
    (property.to_owned(), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(id: &str, properties: &[(&str, &str)]) -> Write {
        let properties = properties.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect();
        Write { id_property: "leadflow_id".into(), id: id.into(), properties }
    }

    fn contacts() -> Contacts {
        Contacts::new(["email", "leadflow_id"])
    }

    fn applied(outcome: Outcome) -> (Vec<(Contact, bool)>, Vec<Conflict>) {
        match outcome {
            Outcome::Applied { results, conflicts } => (results, conflicts),
            Outcome::Refused(c) => panic!("refused: {c:?}"),
        }
    }

    const T: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    #[test]
    fn the_last_writer_wins_and_properties_not_given_are_kept() {
        let mut crm = contacts();
        let batch = [
            write("L1", &[("leadflow_version", "5"), ("firstname", "Ann"), ("company", "X")]),
            write("L1", &[("leadflow_version", "3"), ("firstname", "Old")]),
        ];
        let (results, conflicts) = applied(crm.upsert(&batch, T, false));
        assert!(conflicts.is_empty());
        assert_eq!(
            results.iter().map(|(c, new)| (c.id.as_str(), *new)).collect::<Vec<_>>(),
            [("1001", true), ("1001", false)]
        );
        let c = crm.find(Some("leadflow_id"), "L1").unwrap();
        assert_eq!(c.properties["firstname"], "Old");
        assert_eq!(c.properties["company"], "X");
        assert_eq!(c.properties["hs_object_id"], "1001");
        assert_eq!(c.version_history, ["5", "3"]);
        let clear = Write { properties: vec![("company".into(), None)], ..write("L1", &[]) };
        applied(crm.upsert(&[clear], T, false));
        assert!(!crm.find(None, "1001").unwrap().properties.contains_key("company"));
    }

    #[test]
    fn an_email_held_by_another_contact_conflicts_even_within_one_batch_and_case_blind() {
        let mut crm = contacts();
        let batch = [
            write("L1", &[("email", "ada@example.com")]),
            write("L2", &[("email", "ADA@example.com")]),
            write("L3", &[("email", "bo@example.com")]),
        ];
        let (results, conflicts) = applied(crm.upsert(&batch, T, false));
        assert_eq!(results.len(), 2);
        assert_eq!(conflicts, [Conflict { input: 1, property: "email".into(), existing_id: "1001".into() }]);
        assert!(crm.find(Some("leadflow_id"), "L2").is_none());
        // The same contact may keep, or rewrite, its own email.
        applied(crm.upsert(&[write("L1", &[("email", "ada@example.com")])], T, false));
    }

    #[test]
    fn all_or_nothing_undoes_everything_the_batch_did() {
        let mut crm = contacts();
        applied(crm.upsert(&[write("L1", &[("email", "ada@example.com"), ("firstname", "Ann")])], T, false));
        let batch = [
            write("L1", &[("email", "new@example.com"), ("firstname", "Changed")]),
            write("L2", &[("email", "bo@example.com")]),
            write("L3", &[("email", "bo@example.com")]),
        ];
        assert_eq!(
            crm.upsert(&batch, T, true),
            Outcome::Refused(Conflict { input: 2, property: "email".into(), existing_id: "1002".into() })
        );
        assert_eq!(crm.all().count(), 1);
        let c = crm.find(Some("email"), "ada@example.com").unwrap();
        assert_eq!(c.properties["firstname"], "Ann");
        assert!(crm.find(Some("email"), "new@example.com").is_none());
        let (results, _) = applied(crm.upsert(&[write("L2", &[])], T, true));
        assert_eq!(results[0].0.id, "1002", "the ids the undone batch took are handed out again");
    }

    #[test]
    fn an_archived_contact_is_found_by_nothing_and_frees_its_email() {
        let mut crm = contacts();
        applied(crm.upsert(&[write("L1", &[("email", "ada@example.com")])], T, false));
        assert!(crm.archive("L1", T));
        assert!(!crm.archive("L1", T), "already gone");
        assert!(crm.find(None, "1001").is_none());
        let (results, conflicts) =
            applied(crm.upsert(&[write("L9", &[("email", "ada@example.com")])], T, false));
        assert!(conflicts.is_empty() && results[0].1);
        let patched = crm.patch("L9", &[("leadflow_version".into(), Some("7".into()))], T).unwrap();
        assert_eq!(patched.version_history, ["7"]);
        assert!(crm.patch("L1", &[], T).is_none());
    }

    fn arbitrary_write() -> impl proptest::strategy::Strategy<Value = Write> {
        use proptest::prelude::*;
        (0..4u8, proptest::option::of(0..4u8), 0..9u8).prop_map(|(lead, email, version)| {
            let mut properties = vec![("leadflow_version".to_owned(), Some(version.to_string()))];
            if let Some(email) = email {
                properties.push(("email".to_owned(), Some(format!("e{email}@example.com"))));
            }
            Write { id_property: "leadflow_id".into(), id: format!("L{lead}"), properties }
        })
    }

    fn live_emails_are_unique_and_indexed(crm: &Contacts) -> bool {
        let live: Vec<&Contact> = crm.all().filter(|c| !c.archived).collect();
        let emails: BTreeSet<&String> = live.iter().filter_map(|c| c.properties.get("email")).collect();
        let with_email = live.iter().filter(|c| c.properties.contains_key("email")).count();
        emails.len() == with_email
            && live.iter().all(|c| {
                c.properties
                    .get("email")
                    .is_none_or(|e| crm.find(Some("email"), e).map(|f| &f.id) == Some(&c.id))
                    && crm.find(Some("leadflow_id"), &c.properties["leadflow_id"]).map(|f| &f.id)
                        == Some(&c.id)
            })
    }

    proptest::proptest! {
        #[test]
        fn a_refused_batch_leaves_everything_as_it_was_and_emails_stay_unique(
            before in proptest::collection::vec(arbitrary_write(), 0..8),
            batch in proptest::collection::vec(arbitrary_write(), 1..8),
        ) {
            let mut crm = contacts();
            crm.upsert(&before, T, false);
            proptest::prop_assert!(live_emails_are_unique_and_indexed(&crm));
            let snapshot: Vec<Contact> = crm.all().cloned().collect();
            let next_id = crm.next_id;
            match crm.upsert(&batch, T, true) {
                Outcome::Refused(_) => {
                    proptest::prop_assert_eq!(crm.all().cloned().collect::<Vec<_>>(), snapshot);
                    proptest::prop_assert_eq!(crm.next_id, next_id);
                }
                Outcome::Applied { results, conflicts } => {
                    proptest::prop_assert!(conflicts.is_empty());
                    proptest::prop_assert_eq!(results.len(), batch.len());
                }
            }
            proptest::prop_assert!(live_emails_are_unique_and_indexed(&crm));
            // Last writer wins: each lead holds the version of its last applied input.
            let (results, _) = applied(crm.upsert(&batch, T, false));
            for (contact, _) in &results {
                let lead = &contact.properties["leadflow_id"];
                let last = results.iter().rev().find(|(c, _)| &c.properties["leadflow_id"] == lead).unwrap();
                proptest::prop_assert_eq!(
                    &crm.find(Some("leadflow_id"), lead).unwrap().properties["leadflow_version"],
                    &last.0.properties["leadflow_version"]
                );
            }
        }
    }
}
