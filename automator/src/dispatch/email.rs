//! One SMTP attempt of an email delivery, through `email.smtp_url` (operator configuration:
//! `smtp://host:port` in plain text, `smtp://…?tls=required` for STARTTLS, `smtps://…` for
//! implicit TLS, `user:password@` for AUTH). Every attempt of a delivery carries the same
//! `Message-ID`, so a mailbox can tell a retry from a new message.
//!
//! SMTP's reply codes map onto the delivery's outcomes as HTTP's do: a 2yz reply (250) is
//! success, and a 4yz or 5yz reply is a failed attempt with its code recorded, retried on the
//! schedule.

use std::time::{Duration, Instant};

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::dispatch::attempt::AttemptResult;

/// What an email delivery stores as its body: the message, before it is written as MIME.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailBody {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
}

/// Sends `body` as `from`, with the delivery's id as its Message-ID, and says how it ended and
/// how long it took.
pub async fn send(
    smtp_url: &str,
    from: &str,
    message_id: &str,
    body: &str,
    timeout: Duration,
) -> (AttemptResult, u64) {
    let started = Instant::now();
    let result = attempt(smtp_url, from, message_id, body, timeout).await;
    (result, u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
}

async fn attempt(
    smtp_url: &str,
    from: &str,
    message_id: &str,
    body: &str,
    timeout: Duration,
) -> AttemptResult {
    let message = match message(from, message_id, body) {
        Ok(message) => message,
        Err(reason) => return AttemptResult::Refused(reason),
    };
    // The URL holds the SMTP password: lettre's error would not, but it is never printed either.
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url) {
        Ok(builder) => builder.timeout(Some(timeout)).build(),
        Err(_) => return AttemptResult::Refused("email.smtp_url is not an smtp:// or smtps:// URL".into()),
    };
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Err(_) => AttemptResult::Timeout,
        Ok(Ok(response)) => AttemptResult::Answered(u16::from(response.code())),
        Ok(Err(e)) if e.is_timeout() => AttemptResult::Timeout,
        Ok(Err(e)) => match e.status() {
            Some(code) => AttemptResult::Answered(u16::from(code)),
            None => AttemptResult::Unreachable(format!("SMTP: {e}")),
        },
    }
}

/// The MIME message of a stored body. Addresses were checked when the rule was made; a body
/// that no longer parses is refused rather than sent wrong.
fn message(from: &str, message_id: &str, body: &str) -> Result<Message, String> {
    let body: EmailBody =
        serde_json::from_str(body).map_err(|e| format!("the stored email is unreadable: {e}"))?;
    let from: Mailbox = from.parse().map_err(|e| format!("email.from is not an address: {e}"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(body.subject)
        .message_id(Some(format!("<{message_id}@leadflow>")))
        .header(ContentType::TEXT_PLAIN);
    for to in &body.to {
        builder = builder.to(to.parse().map_err(|e| format!("{to:?} is not an address: {e}"))?);
    }
    builder.body(body.text).map_err(|e| format!("cannot build the message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_body_becomes_one_plain_text_message_with_the_delivery_s_id() {
        let body = serde_json::to_string(&EmailBody {
            to: vec!["sales@example.com".into(), "Ada <ada@example.com>".into()],
            subject: "Lead lead-1 is hot".into(),
            text: "Ada (lead-1) is hot, score 61".into(),
        })
        .unwrap();
        let message = message("LeadFlow <leadflow@example.com>", "msg_1a2b", &body).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Message-ID: <msg_1a2b@leadflow>"), "{text}");
        assert!(
            text.contains("To: sales@example.com, \"Ada\" <ada@example.com>")
                || text.contains("To: sales@example.com, Ada <ada@example.com>"),
            "{text}"
        );
        assert!(text.contains("Subject: Lead lead-1 is hot"), "{text}");
        assert!(text.ends_with("Ada (lead-1) is hot, score 61"), "{text}");
    }

    #[test]
    fn an_unusable_body_or_sender_is_refused_not_sent() {
        assert!(message("LeadFlow <leadflow@example.com>", "m", "{").is_err());
        let body = r#"{"to":["not an address"],"subject":"s","text":"t"}"#;
        assert!(message("LeadFlow <leadflow@example.com>", "m", body).is_err());
        let body = r#"{"to":["a@example.com"],"subject":"s","text":"t"}"#;
        assert!(message("nobody", "m", body).is_err());
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_a_bad_url_refused() {
        let body = r#"{"to":["a@example.com"],"subject":"s","text":"t"}"#;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("smtp://127.0.0.1:{port}");
        let (result, _) = send(&url, "x@example.com", "m", body, Duration::from_secs(5)).await;
        assert!(matches!(result, AttemptResult::Unreachable(_)), "{result:?}");
        let (result, _) = send("http://127.0.0.1/", "x@example.com", "m", body, Duration::from_secs(5)).await;
        assert!(matches!(result, AttemptResult::Refused(_)), "{result:?}");
    }
}
