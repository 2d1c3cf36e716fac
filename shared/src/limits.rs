//! The limits every layer agrees on (the design's "Conventions and limits"). They live at the bottom
//! of the module graph so that the HTTP surfaces, the service, the stores and the configuration
//! can all read them without importing each other.

use chrono::TimeDelta;

/// Larger request bodies are refused before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A key's quota, and the default quota configuration may set: 1..=2^31−1.
pub const MAX_TOTAL_USAGE: u32 = i32::MAX as u32;

pub const NAME_MAX_CHARS: usize = 64;
pub const DESCRIPTION_MAX_CHARS: usize = 256;
pub const USER_ID_MAX_CHARS: usize = 128;
/// NCP's domain code (`PUB` unless an import brings another).
pub const DOMAIN_CODE_MAX_CHARS: usize = 128;
pub const SCOPE_MAX_ENTRIES: usize = 64;
pub const SCOPE_ENTRY_MAX_CHARS: usize = 128;
/// About a century: anything longer is a typo, and it keeps every expiry representable.
pub const VALIDITY_MAX_SECONDS: i64 = 100 * 365 * 24 * 3600;
/// The longest token lifetime, refresh grace or family age the configuration may set: ten years.
/// Anything longer is a mistake, and bounding it keeps every instant computed from it in range.
pub const TOKEN_DURATION_MAX_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// An admin credential's secret must be at least this long: the HMAC is only as strong as it.
pub const ADMIN_SECRET_MIN_BYTES: usize = 16;

/// How far a signed request's timestamp may be from the server's clock, either way.
pub const SIGNATURE_MAX_SKEW: TimeDelta = TimeDelta::minutes(5);

/// SpaceONE `Query.page.limit`.
pub const QUERY_MAX_PAGE_LIMIT: u64 = 1000;

/// NCP's list `limit`: its default and its largest value.
pub const LIST_DEFAULT_LIMIT: usize = 10;
pub const LIST_MAX_LIMIT: usize = 100;
