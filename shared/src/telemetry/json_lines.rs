//! The JSON log line, written directly: `{"timestamp", "level", "fields": {...}, "span": {...,
//! "name"}}`, the shape tracing-subscriber's JSON format gives (with the current span, without
//! the target). Its own formatter renders a span's fields to a JSON object when the span opens,
//! then parses that text back into a JSON value for every event in the span; for the local
//! server's one line per request that cost more than the rest of a JWKS request (28,000
//! instructions of 52,000). Here a span's fields are written once as the members of an object and
//! copied as they are into each line.

use std::fmt::{self, Write};

use chrono::{Datelike, Timelike};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format: one JSON object per line.
pub(super) struct JsonLines;

/// A span's fields as the members of a JSON object, without its braces (`"a":1,"b":"x"`).
pub(super) struct JsonMembers;

impl<S> FormatEvent<S, JsonMembers> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonMembers>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, chrono::Utc::now())?;
        write!(writer, "\",\"level\":\"{}\",\"fields\":{{", event.metadata().level())?;
        let mut members = Members::new(&mut writer);
        event.record(&mut members);
        members.result?;
        writer.write_char('}')?;
        let span = event.parent().and_then(|id| ctx.span(id)).or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":{")?;
            if let Some(fields) = span.extensions().get::<FormattedFields<JsonMembers>>()
                && !fields.is_empty()
            {
                writer.write_str(fields)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            write_string(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

impl<'w> FormatFields<'w> for JsonMembers {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut members = Members::new(&mut writer);
        fields.record(&mut members);
        members.result
    }

    /// Fields recorded on an open span join its members, after a comma; written aside first, so
    /// a value that fails to format leaves the span's members as they were. (A field recorded
    /// twice appears twice: keygate records a span's fields once, when it opens.)
    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &span::Record<'_>) -> fmt::Result {
        let mut added = String::new();
        let mut writer = Writer::new(&mut added);
        let mut members = Members::new(&mut writer);
        members.first = current.fields.is_empty();
        fields.record(&mut members);
        members.result?;
        current.fields.push_str(&added);
        Ok(())
    }
}

/// Writes each field it visits as a member: `"name":value`, separated by commas.
struct Members<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl<'a, 'w> Members<'a, 'w> {
    fn new(writer: &'a mut Writer<'w>) -> Self {
        Self { writer, first: true, result: Ok(()) }
    }

    /// Writes the member's name and `value`, unless writing already failed. The `log.*` fields
    /// that a `log` record carries as a tracing event repeat its metadata (target, file, line):
    /// left out, where tracing-subscriber's JSON format kept them among an event's fields.
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'w>) -> fmt::Result) {
        if self.result.is_ok() && !field.name().starts_with("log.") {
            let separator = if self.first { "" } else { "," };
            self.first = false;
            self.result = self
                .writer
                .write_str(separator)
                .and_then(|()| write_string(self.writer, field.name()))
                .and_then(|()| self.writer.write_char(':'))
                .and_then(|()| value(self.writer));
        }
    }
}

impl Visit for Members<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |writer| write_string(writer, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |writer| write!(writer, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |writer| write!(writer, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |writer| write!(writer, "{value}"));
    }

    /// JSON has no NaN or infinity: those are `null`, as serde_json writes them.
    fn record_f64(&mut self, field: &Field, value: f64) {
        match value.is_finite() {
            true => self.member(field, |writer| write!(writer, "{value}")),
            false => self.member(field, |writer| writer.write_str("null")),
        }
    }

    /// Anything else (the message, `%display` and `?debug` values) as a string of its text.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |writer| {
            writer.write_char('"')?;
            write!(Escaped(writer), "{value:?}")?;
            writer.write_char('"')
        });
    }
}

/// `text` as a JSON string.
fn write_string(writer: &mut impl Write, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    Escaped(writer).write_str(text)?;
    writer.write_char('"')
}

/// Writes what it is given escaped for the inside of a JSON string (RFC 8259, section 7): the
/// quote, the backslash and the control characters; anything else as it is.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Most text needs no escape: one scan, then one write.
        if text.bytes().all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\') {
            return self.0.write_str(text);
        }
        let mut plain = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..at])?;
            match escape.is_empty() {
                true => write!(self.0, "\\u{byte:04x}")?,
                false => self.0.write_str(escape)?,
            }
            plain = at + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

/// RFC 3339 in UTC to the microsecond, as tracing-subscriber writes it:
/// `2026-11-26T04:23:46.133920Z`.
fn write_timestamp(writer: &mut impl Write, time: chrono::DateTime<chrono::Utc>) -> fmt::Result {
    write!(
        writer,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        // A leap second's nanoseconds run past a billion; its microseconds stay six digits.
        (time.nanosecond() / 1000) % 1_000_000,
    )
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The lines `log` writes, each parsed as JSON (a line that is not JSON fails the test).
    fn logged(log: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let writer = lines.clone();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonMembers)
            .event_format(JsonLines)
            .with_writer(move || writer.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), log);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn an_event_in_a_span_is_one_json_line_with_its_fields_and_the_spans() {
        let lines = logged(|| {
            let span = tracing::info_span!("request", request_id = "0123abcd", method = %"GET", path = "/x");
            let _entered = span.enter();
            tracing::info!(status = 200u16, "served");
        });
        let [line] = lines.as_slice() else { panic!("{lines:?}") };
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(), "{timestamp}");
        assert_eq!(timestamp.len(), "2026-11-26T04:23:46.133920Z".len(), "{timestamp}");
        let mut rest = line.clone();
        rest.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(
            rest,
            json!({
                "level": "INFO",
                "fields": { "message": "served", "status": 200 },
                "span": { "request_id": "0123abcd", "method": "GET", "path": "/x", "name": "request" },
            })
        );
    }

    #[test]
    fn values_are_escaped_and_typed() {
        let lines = logged(|| {
            let text = "quote \" backslash \\ newline \n tab \t bell \u{7} é";
            tracing::warn!(text, negative = -3i64, yes = true, ratio = 0.5f64, nan = f64::NAN, debug = ?("a\"b", 1), "odd {}", "\"message\"");
        });
        assert_eq!(
            lines,
            [json!({
                "timestamp": lines[0]["timestamp"],
                "level": "WARN",
                "fields": {
                    "message": "odd \"message\"",
                    "text": "quote \" backslash \\ newline \n tab \t bell \u{7} é",
                    "negative": -3,
                    "yes": true,
                    "ratio": 0.5,
                    "nan": null,
                    "debug": "(\"a\\\"b\", 1)",
                },
            })]
        );
    }

    #[test]
    fn fields_recorded_later_join_the_span_and_an_empty_span_has_only_its_name() {
        let lines = logged(|| {
            let span = tracing::info_span!("outer", first = 1u64, later = tracing::field::Empty);
            let _outer = span.enter();
            span.record("later", "set");
            tracing::info!("in outer");
            let inner = tracing::info_span!("inner");
            let _inner = inner.enter();
            tracing::info!("in inner");
        });
        assert_eq!(lines[0]["span"], json!({ "first": 1, "later": "set", "name": "outer" }));
        assert_eq!(lines[1]["span"], json!({ "name": "inner" }));
    }

    #[test]
    fn an_event_outside_any_span_has_no_span_member() {
        let lines = logged(|| tracing::error!(code = "x", "alone"));
        assert_eq!(lines[0].get("span"), None);
        assert_eq!(lines[0]["fields"], json!({ "message": "alone", "code": "x" }));
    }

    #[test]
    fn the_metadata_fields_of_a_log_record_are_left_out() {
        let lines = logged(|| tracing::info!(log.target = "hyper", log.line = 7u64, "from log"));
        assert_eq!(lines[0]["fields"], json!({ "message": "from log" }));
    }

    #[test]
    fn timestamps_keep_six_digits_of_microseconds() {
        let time = chrono::DateTime::from_timestamp(1_767_225_600, 1_000).unwrap();
        let mut text = String::new();
        write_timestamp(&mut text, time).unwrap();
        assert_eq!(text, "2026-01-01T00:00:00.000001Z");
    }
}
