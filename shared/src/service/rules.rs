//! What an admin's input must satisfy before it reaches the store. A refusal names the field,
//! never the value.

use chrono::TimeDelta;

use crate::error::Error;
use crate::limits::{
    DESCRIPTION_MAX_CHARS, DOMAIN_CODE_MAX_CHARS, LIST_MAX_LIMIT, MAX_TOTAL_USAGE, NAME_MAX_CHARS,
    SCOPE_ENTRY_MAX_CHARS, SCOPE_MAX_ENTRIES, USER_ID_MAX_CHARS, VALIDITY_MAX_SECONDS,
};
use crate::model::{ApiKey, Caller, StoredSecret, Timestamp};

/// A `domain_id` a request names must be the caller's own.
pub(super) fn own_domain(caller: &Caller, named: Option<&str>) -> Result<(), Error> {
    match named {
        Some(domain) if domain != caller.domain_id => {
            Err(Error::PermissionDenied("domain_id is not the caller's domain".into()))
        }
        _ => Ok(()),
    }
}

pub(super) fn user_id(value: String) -> Result<String, Error> {
    bounded_text("user_id", value, 1, USER_ID_MAX_CHARS)
}

pub(super) fn name(value: String) -> Result<String, Error> {
    bounded_text("name", value, 1, NAME_MAX_CHARS)
}

pub(super) fn description(value: String) -> Result<String, Error> {
    bounded_text("description", value, 0, DESCRIPTION_MAX_CHARS)
}

pub(super) fn scope(scope: Vec<String>) -> Result<Vec<String>, Error> {
    if scope.len() > SCOPE_MAX_ENTRIES {
        return Err(invalid("scope has more than 64 entries"));
    }
    let valid = |s: &String| {
        !s.is_empty() && s.chars().count() <= SCOPE_ENTRY_MAX_CHARS && s.chars().all(|c| c.is_ascii_graphic())
    };
    if !scope.iter().all(valid) {
        return Err(invalid("each scope entry must be 1 to 128 visible ASCII characters, no spaces"));
    }
    Ok(scope)
}

pub(super) fn max_total_usage(value: i64) -> Result<u32, Error> {
    u32::try_from(value)
        .ok()
        .filter(|n| (1..=MAX_TOTAL_USAGE).contains(n))
        .ok_or_else(|| invalid("max_total_usage must be between 1 and 2147483647"))
}

/// A key expires a validity after registration, or at a fixed time in the future: never both.
/// Neither given means `default_validity_seconds`.
pub(super) fn expiry(
    validity_seconds: Option<i64>,
    expires_at: Option<Timestamp>,
    default_validity_seconds: u64,
    now: Timestamp,
) -> Result<(Option<u64>, Option<Timestamp>), Error> {
    match (validity_seconds, expires_at) {
        (Some(_), Some(_)) => Err(invalid("validity_seconds and expires_at are exclusive")),
        (Some(seconds), None) if (1..=VALIDITY_MAX_SECONDS).contains(&seconds) => {
            Ok((Some(seconds as u64), None))
        }
        (Some(_), None) => Err(invalid("validity_seconds must be between 1 and 3153600000")),
        (None, Some(at)) if at <= now => Err(invalid("expires_at is in the past")),
        (None, Some(at)) if at > now + TimeDelta::seconds(VALIDITY_MAX_SECONDS) => {
            Err(invalid("expires_at is more than 100 years away"))
        }
        (None, Some(at)) => Ok((None, Some(at))),
        (None, None) => Ok((Some(default_validity_seconds), None)),
    }
}

/// A key as a store holds it (an imported backup's, say) must be one the API could have made: the
/// same rules as a create's input, and the invariants every write keeps. The message names the
/// field, never its value.
pub fn stored_key(key: &ApiKey) -> Result<(), Error> {
    let text = |field: &str, value: &str, min: usize, max: usize| {
        bounded_text(field, value.to_owned(), min, max).map(drop)
    };
    // The domain and the modifier come from an admin credential, which asks only that they are
    // not empty.
    for (field, value) in [("domain_id", &key.domain_id), ("modifier", &key.modifier)] {
        if value.trim().is_empty() {
            return Err(Error::MissingParameter(field.to_owned()));
        }
    }
    text("user_id", &key.user_id, 1, USER_ID_MAX_CHARS)?;
    text("name", &key.name, 1, NAME_MAX_CHARS)?;
    text("description", &key.description, 0, DESCRIPTION_MAX_CHARS)?;
    text("domain_code", &key.domain_code, 1, DOMAIN_CODE_MAX_CHARS)?;
    scope(key.scope.clone())?;
    max_total_usage(key.max_total_usage.into())?;
    if key.remaining_total_usage > key.max_total_usage {
        return Err(invalid("remaining_total_usage is above max_total_usage"));
    }
    match (key.validity_seconds, key.expires_at) {
        (None, None) => return Err(invalid("a key needs validity_seconds or expires_at")),
        (Some(seconds), _) if !(1..=VALIDITY_MAX_SECONDS).contains(&(seconds as i64)) => {
            return Err(invalid("validity_seconds must be between 1 and 3153600000"));
        }
        // A validity key has its expiry from its registration on: never one without the other.
        (Some(_), expires_at) if expires_at.is_some() != key.registered_at.is_some() => {
            return Err(invalid("a validity key has expires_at exactly when it is registered"));
        }
        (None, Some(at)) if at > key.created_at + TimeDelta::seconds(VALIDITY_MAX_SECONDS) => {
            return Err(invalid("expires_at is more than 100 years after created_at"));
        }
        _ => {}
    }
    for (field, secret) in [("primary", &key.primary), ("secondary", &key.secondary)] {
        stored_secret(field, secret)?;
    }
    if key.primary.hash == key.secondary.hash {
        return Err(invalid("primary and secondary hold the same value"));
    }
    Ok(())
}

/// A slot as stores keep it: a hex HMAC-SHA256, the value's last four characters, and a
/// generation that can still move on.
fn stored_secret(field: &str, secret: &StoredSecret) -> Result<(), Error> {
    let hash = secret.hash.as_str();
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid(format!("{field}.hash must be 64 lowercase hex digits")));
    }
    if secret.last4.chars().count() != 4 || !secret.last4.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(format!("{field}.last4 must be 4 letters or digits")));
    }
    if secret.generation == u32::MAX {
        return Err(invalid(format!("{field}.generation must be below {}", u32::MAX)));
    }
    Ok(())
}

pub(super) fn list_limit(limit: usize) -> Result<usize, Error> {
    if (1..=LIST_MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(invalid(format!("limit must be between 1 and {LIST_MAX_LIMIT}")))
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

fn bounded_text(field: &str, value: String, min: usize, max: usize) -> Result<String, Error> {
    let chars = value.chars().count();
    if min > 0 && value.trim().is_empty() {
        return Err(Error::MissingParameter(field.to_owned()));
    }
    if chars < min || chars > max || value.chars().any(is_invisible) {
        return Err(Error::InvalidArgument(format!("{field} must be {min} to {max} printable characters")));
    }
    Ok(value)
}

/// Control and format characters (bidi overrides such as U+202E, zero-width joiners and spaces)
/// and line or paragraph separators: they would let one text pass for another in a listing.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug, Error>) -> String {
        match result {
            Err(err) => err.to_string(),
            Ok(value) => panic!("accepted {value:?}"),
        }
    }

    #[test]
    fn a_named_domain_must_be_the_callers() {
        let caller = Caller { domain_id: "domain-a".into(), access_key: "AK".into() };
        assert!(own_domain(&caller, None).is_ok());
        assert!(own_domain(&caller, Some("domain-a")).is_ok());
        assert!(matches!(own_domain(&caller, Some("domain-b")), Err(Error::PermissionDenied(_))));
    }

    #[test]
    fn texts_are_bounded_printable_and_a_blank_required_one_is_missing() {
        assert_eq!(name("x".repeat(64)).unwrap().len(), 64);
        assert_eq!(
            message(name("x".repeat(65))),
            "invalid argument: name must be 1 to 64 printable characters"
        );
        assert_eq!(message(name("  ".into())), "required parameter missing: name");
        assert_eq!(message(user_id(String::new())), "required parameter missing: user_id");
        assert_eq!(description(String::new()).unwrap(), "");
        for invisible in ['\u{7}', '\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}', '\u{2028}', '\u{E0041}'] {
            assert!(description(format!("a{invisible}b")).is_err(), "U+{:04X}", invisible as u32);
            assert!(name(format!("a{invisible}b")).is_err(), "U+{:04X}", invisible as u32);
        }
        assert_eq!(name("café ☕ 東京".into()).unwrap(), "café ☕ 東京", "letters and symbols of any script");
        assert_eq!(name("ключ".into()).unwrap(), "ключ", "characters, not bytes, are counted");
    }

    #[test]
    fn scope_entries_are_visible_ascii_and_few() {
        assert!(scope(vec!["orders:read".into()]).is_ok());
        for bad in [vec![String::new()], vec!["has space".into()], vec!["x".repeat(129)], vec!["é".into()]] {
            assert!(scope(bad.clone()).is_err(), "{bad:?}");
        }
        assert!(scope(vec!["a".into(); 65]).is_err());
    }

    #[test]
    fn quota_is_between_one_and_i32_max() {
        assert_eq!(max_total_usage(1).unwrap(), 1);
        assert_eq!(max_total_usage(2_147_483_647).unwrap(), MAX_TOTAL_USAGE);
        for bad in [0, -1, 2_147_483_648] {
            assert!(max_total_usage(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_is_a_validity_or_a_future_time_never_both() {
        let now = crate::model::now();
        let later = now + TimeDelta::days(1);
        assert_eq!(expiry(None, None, 3600, now).unwrap(), (Some(3600), None));
        assert_eq!(expiry(Some(60), None, 3600, now).unwrap(), (Some(60), None));
        assert_eq!(expiry(None, Some(later), 3600, now).unwrap(), (None, Some(later)));
        let cases = [
            (Some(60), Some(later), "validity_seconds and expires_at are exclusive"),
            (Some(0), None, "validity_seconds must be between 1 and 3153600000"),
            (Some(VALIDITY_MAX_SECONDS + 1), None, "validity_seconds must be between 1 and 3153600000"),
            (None, Some(now), "expires_at is in the past"),
            (None, Some(now + TimeDelta::days(365 * 101)), "expires_at is more than 100 years away"),
        ];
        for (validity, at, expected) in cases {
            assert_eq!(message(expiry(validity, at, 3600, now)), format!("invalid argument: {expected}"));
        }
    }

    #[test]
    fn list_limits_are_one_to_a_hundred() {
        assert_eq!(list_limit(100).unwrap(), 100);
        assert_eq!(message(list_limit(0)), "invalid argument: limit must be between 1 and 100");
        assert!(list_limit(101).is_err());
    }
}
