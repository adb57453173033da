//! Readiness means ready: a consumer's `/readyz` answers 200 only once it is a member of its
//! consumer group, holding its assignment.

mod common;

use std::time::Duration;

use common::{ONE_AT_A_TIME, ScorerRun};
use leadflow_testkit::{ServiceProcess, Stack, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_only_once_the_scorer_holds_its_assignment() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = ScorerRun::new(&stack);
    let (scorer, ops) =
        ServiceProcess::spawn_against(&stack, env!("CARGO_BIN_EXE_scorer"), &run.env(&stack, "a"))
            .await
            .unwrap();
    let url = format!("http://{ops}/readyz");
    let not_ready = std::sync::Mutex::new(Vec::new());
    eventually("/readyz answers 200", Duration::from_secs(60), || {
        let url = url.clone();
        let scorer = &scorer;
        let not_ready = &not_ready;
        async move {
            let answer = reqwest::get(&url).await.map_err(|e| e.to_string())?;
            if answer.status() == 200 {
                // Read after the answer: the line must already be there when readiness says so.
                return Ok(Some(scorer.logs()));
            }
            let body = answer.text().await.unwrap_or_default();
            not_ready.lock().unwrap().push(body);
            Ok(None)
        }
    })
    .await
    .map(|logs_at_ready| {
        assert!(
            logs_at_ready.contains("partitions assigned"),
            "/readyz answered 200 before the scorer had its partitions:\n{logs_at_ready}"
        )
    })
    .unwrap();
    assert!(
        not_ready.lock().unwrap().iter().all(|body| body.contains("consumer_group")),
        "every 503 before joining names the group: {not_ready:?}"
    );
}
