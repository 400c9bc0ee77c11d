//! `agentbus bench pattern-extractor`: sustained input events/s of `agentbus consume
//! pattern-extractor` (one Kafka transaction per batch: outputs, changelog, offsets),
//! the p99 of a batch's transaction and the process's memory, for each batch size.

use super::consumer_run::{self, Events, Shape};
use agentbus_client::Topic;

#[derive(Debug, Clone, clap::Args)]
pub(super) struct PatternExtractorBench {
    #[command(flatten)]
    shape: Shape,
}

/// Task execution `i`: 500 fingerprints, three step sequences each, the second step's
/// file varying; nine in ten succeed with quality 0.9, so templates are published and
/// refined as the run goes on.
fn execution(i: u64, size: usize) -> (String, Vec<u8>) {
    let fingerprint = format!("{:08x}-0000-4000-8000-{:012x}", 0xf1f1_u32, i % 500);
    let sequence = (i / 500) % 3;
    let entity = ["user", "item", "cart", "blog"][(i % 4) as usize];
    let ts = consumer_run::timestamp(i);
    let build = |pad: usize| {
        format!(
            r#"{{"event_id":"{:08x}-0000-4000-8000-{i:012x}","correlation_id":"{:08x}-0000-4000-8000-{i:012x}","fingerprint_id":"{fingerprint}","task_hash":"h","original_prompt":"P{}","task_type":"code_generation","domain":"api_development","agent_name":"agent-api-architect","success":{},"quality_score":0.9,"steps":[{{"step_number":1,"action":"rag_query"}},{{"step_number":2,"action":"generate_{sequence}","files":["api/{entity}.py"]}},{{"step_number":3,"action":"validate"}}],"total_duration_ms":{},"timestamp":"{ts}"}}"#,
            0xe7e7_u32,
            0xc0de_u32,
            "x".repeat(pad),
            !i.is_multiple_of(10),
            1000 + i % 997
        )
    };
    let base = build(0).len();
    let value = build(size.saturating_sub(base)).into_bytes();
    (fingerprint, value)
}

pub(super) fn run(args: &PatternExtractorBench) -> anyhow::Result<()> {
    let events = Events {
        topic: Topic::TaskExecutions,
        make: execution,
    };
    let broker = consumer_run::broker_with(&args.shape, events)?;
    println!(
        "{}",
        consumer_run::header("Kafka (transactions)", "transaction", &[])
    );
    for (n, &batch) in args.shape.batch_sizes.iter().enumerate() {
        // A group and transactional id of its own per run: every run reads everything.
        let run = consumer_run::measure(
            "pattern-extractor",
            &broker.bootstrap,
            batch,
            args.shape.count,
            "messages_inserted",
            &[
                ("CONSUMER_GROUP_ID", format!("ml-bench-{n}")),
                ("INSTANCE_ID", format!("bench-{n}")),
            ],
        );
        println!("{}", run?.row());
    }
    Ok(())
}
