//! Outgoing email: SMTP through lettre (rustls) when `INFRON_SMTP_URL` is set; otherwise each
//! message, links included, is written to the log (the quick start needs no mail server).

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{AccountsError, Result};
use crate::types::Email;

#[derive(Clone)]
pub enum Mailer {
    Smtp(Box<Smtp>),
    Log,
}

#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// One message to send: plain text.
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

impl Mailer {
    /// `url`: `smtp://[user:pass@]host[:port]` (STARTTLS when offered is not required; add
    /// `?tls=required` to insist) or `smtps://...` (TLS from the start). None: log only.
    pub fn new(url: Option<&str>, from: &str) -> std::result::Result<Mailer, String> {
        let Some(url) = url else {
            return Ok(Mailer::Log);
        };
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("INFRON_EMAIL_FROM '{from}': {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("INFRON_SMTP_URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Mailer::Smtp(Box::new(Smtp { transport, from })))
    }

    pub async fn send(&self, to: &Email, mail: Mail) -> Result<()> {
        match self {
            Mailer::Log => {
                tracing::info!(to = %to, subject = %mail.subject, body = %mail.body, "email (no SMTP configured; written to the log)");
                Ok(())
            }
            Mailer::Smtp(smtp) => {
                let Smtp { transport, from } = smtp.as_ref();
                let to: Mailbox = to
                    .as_str()
                    .parse()
                    .map_err(|e| AccountsError::Mail(format!("recipient: {e}")))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.body)
                    .map_err(|e| AccountsError::Mail(e.to_string()))?;
                transport
                    .send(message)
                    .await
                    .map_err(|e| AccountsError::Mail(e.to_string()))?;
                Ok(())
            }
        }
    }
}

pub fn verify_email(link: &str) -> Mail {
    Mail {
        subject: "Confirm your email address for Infron".into(),
        body: format!(
            "Welcome to Infron.\n\nConfirm your email address by opening this link:\n\n{link}\n\n\
             The link works once and expires in 24 hours. If you did not sign up, ignore this message.\n"
        ),
    }
}

pub fn already_registered(sign_in: &str, reset: &str) -> Mail {
    Mail {
        subject: "You already have an Infron account".into(),
        body: format!(
            "Someone (probably you) tried to sign up with this address, which already has an account.\n\n\
             Sign in: {sign_in}\nForgot your password? {reset}\n\nIf it was not you, ignore this message.\n"
        ),
    }
}

pub fn reset_password(link: &str) -> Mail {
    Mail {
        subject: "Reset your Infron password".into(),
        body: format!(
            "Choose a new password by opening this link:\n\n{link}\n\n\
             The link works once and expires in one hour. If you did not ask for it, ignore this message;\n\
             your password stays as it is.\n"
        ),
    }
}

pub fn invitation(account: &str, role: &str, inviter: &str, link: &str) -> Mail {
    Mail {
        subject: format!("You are invited to {account} on Infron"),
        body: format!(
            "{inviter} invited you to join the account \"{account}\" on Infron as {role}.\n\n\
             Accept the invitation (sign in or sign up with this address first):\n\n{link}\n\n\
             The invitation expires in 7 days.\n"
        ),
    }
}
