//! InitProducerId v0–v5 for idempotent producers: a fresh producer id with epoch 0.
//! Transactional ids need the transaction coordinator, which this broker does not offer
//! yet (FindCoordinator for transactions is not advertised, so clients stop before this).

use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use std::sync::Arc;

pub(crate) fn handle(state: &Arc<State>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if let Some(id) = &req.transactional_id {
        tracing::warn!(transactional_id = %id.0.as_str(), "transactions are not supported yet");
        resp.error_code = ResponseError::InvalidRequest.code();
        return resp;
    }
    match state.allocate_producer_id() {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            resp.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    resp
}
