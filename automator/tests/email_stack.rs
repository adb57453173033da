//! The email action against a real SMTP server (Debian's aiosmtpd, `deploy/local/bin/smtp-server`):
//! a rule "enters hot → email" sends one message per lead and UTC day, with the placeholders
//! filled in and the delivery's id as its Message-ID.

mod common;

use std::time::Duration;

use common::{AutomatorRun, ONE_AT_A_TIME, SmtpServer};
use leadflow_core::contract::records::{ActionOutcome, Stage};
use leadflow_core::model::automation::{Action, AutomationRule, Condition};
use leadflow_testkit::kafka::produce_records;
use leadflow_testkit::{Stack, eventually};
use time::macros::datetime;

#[tokio::test(flavor = "multi_thread")]
async fn a_lead_entering_hot_is_emailed_once_a_day_through_the_smtp_server() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = AutomatorRun::new(&stack);
    let smtp = SmtpServer::start().await;
    let rule = AutomationRule {
        project_id: run.project.clone(),
        id: "hot-by-mail".into(),
        version: "v1".into(),
        name: "Hot leads by email".into(),
        enabled: true,
        condition: Condition::EntersStage { stage: Stage::Hot },
        actions: vec![Action::Email {
            to: vec!["sales@example.com".into(), "ada@example.org".into()],
            subject: Some("{leadId} is {stage}".into()),
            message: None,
        }],
    };
    produce_records(&stack, std::slice::from_ref(&rule)).await;
    let env = [
        ("LEADFLOW_EMAIL__SMTP_URL", smtp.url.clone()),
        ("LEADFLOW_EMAIL__FROM", "LeadFlow <leadflow@example.com>".to_owned()),
    ];
    let _automator = run.start(&stack, "a1", &env).await;

    let at = datetime!(2026-03-09 12:00 UTC);
    let records = [
        run.scored("lead-1", "e1", 45.0, Stage::Hot, at),
        run.scored("lead-1", "e2", 30.0, Stage::Warm, at + time::Duration::minutes(1)),
        run.scored("lead-1", "e3", 50.0, Stage::Hot, at + time::Duration::minutes(2)),
        run.scored("lead-2", "w1", 48.0, Stage::Hot, at + time::Duration::minutes(3)),
    ];
    produce_records(&stack, &records).await;
    let messages = eventually("two emails", Duration::from_secs(60), || async {
        let messages = smtp.messages();
        Ok((messages.len() >= 2).then_some(messages))
    })
    .await
    .unwrap();

    let executions = run.executions(&stack, 2).await;
    assert_eq!(executions.len(), 2, "lead-1 re-entered hot the same day: one execution each");
    let for_lead =
        |lead: &str| messages.iter().find(|m| m.contains(&format!("Subject: {lead} is hot"))).cloned();
    for execution in &executions {
        let action = &execution.actions[0];
        assert_eq!((action.kind.as_str(), action.outcome), ("email", ActionOutcome::Queued));
        let message = for_lead(&execution.lead_id)
            .unwrap_or_else(|| panic!("no email for {}: {messages:?}", execution.lead_id));
        let id = action.message_id.as_deref().unwrap();
        assert!(message.contains(&format!("Message-ID: <{id}@leadflow>")), "{message}");
        assert!(message.contains("From: LeadFlow <leadflow@example.com>"), "{message}");
        assert!(message.contains("sales@example.com") && message.contains("ada@example.org"), "{message}");
        assert!(
            message.contains(&format!("Lead {} ({}) is hot", execution.lead_id, execution.lead_id)),
            "{message}"
        );
    }
    assert_eq!(messages.len(), 2, "nothing more arrived: {messages:?}");
}
