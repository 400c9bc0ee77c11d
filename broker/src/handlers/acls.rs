//! CreateAcls, DescribeAcls and DeleteAcls, as `kafka-acls` drives them. Without an
//! authorizer they answer SECURITY_DISABLED, as Kafka does.

use super::str_bytes;
use crate::security::{AclBinding, AclFilter};
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const DISABLED: &str = "No Authorizer is configured.";

fn disabled() -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    (
        ResponseError::SecurityDisabled.code(),
        Some(str_bytes(DISABLED.to_string())),
    )
}

pub(crate) fn create(state: &Arc<State>, req: CreateAclsRequest) -> CreateAclsResponse {
    let mut resp = CreateAclsResponse::default();
    let authorizer = &state.authorizer;
    let mut valid = Vec::new();
    for c in &req.creations {
        let mut r = AclCreationResult::default();
        let binding = AclBinding {
            resource_type: c.resource_type,
            name: c.resource_name.to_string(),
            pattern: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        };
        if !authorizer.enabled {
            (r.error_code, r.error_message) = disabled();
        } else if let Some(why) = binding.invalid() {
            r.error_code = ResponseError::InvalidRequest.code();
            r.error_message = Some(str_bytes(why));
        } else {
            valid.push((resp.results.len(), binding));
        }
        resp.results.push(r);
    }
    let bindings: Vec<AclBinding> = valid.iter().map(|(_, b)| b.clone()).collect();
    if let Err(e) = authorizer.create(&bindings) {
        for (i, _) in &valid {
            resp.results[*i].error_code = ResponseError::UnknownServerError.code();
            resp.results[*i].error_message = Some(str_bytes(e.to_string()));
        }
    }
    resp
}

fn filter(
    resource_type: i8,
    name: &Option<kafka_protocol::protocol::StrBytes>,
    pattern: i8,
    principal: &Option<kafka_protocol::protocol::StrBytes>,
    host: &Option<kafka_protocol::protocol::StrBytes>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type,
        name: name.as_ref().map(|s| s.to_string()),
        pattern,
        principal: principal.as_ref().map(|s| s.to_string()),
        host: host.as_ref().map(|s| s.to_string()),
        operation,
        permission,
    }
}

pub(crate) fn describe(state: &Arc<State>, req: DescribeAclsRequest) -> DescribeAclsResponse {
    let mut resp = DescribeAclsResponse::default();
    if !state.authorizer.enabled {
        (resp.error_code, resp.error_message) = disabled();
        return resp;
    }
    let f = filter(
        req.resource_type_filter,
        &req.resource_name_filter,
        req.pattern_type_filter,
        &req.principal_filter,
        &req.host_filter,
        req.operation,
        req.permission_type,
    );
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in state.authorizer.describe(&f) {
        let mut d = AclDescription::default();
        d.principal = str_bytes(b.principal);
        d.host = str_bytes(b.host);
        d.operation = b.operation;
        d.permission_type = b.permission;
        by_resource
            .entry((b.resource_type, b.name, b.pattern))
            .or_default()
            .push(d);
    }
    resp.resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = resource_type;
            r.resource_name = str_bytes(name);
            r.pattern_type = pattern;
            r.acls = acls;
            r
        })
        .collect();
    resp
}

pub(crate) fn delete(state: &Arc<State>, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let mut resp = DeleteAclsResponse::default();
    if !state.authorizer.enabled {
        resp.filter_results = req
            .filters
            .iter()
            .map(|_| {
                let mut r = DeleteAclsFilterResult::default();
                (r.error_code, r.error_message) = disabled();
                r
            })
            .collect();
        return resp;
    }
    let filters: Vec<AclFilter> = req
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                &f.resource_name_filter,
                f.pattern_type_filter,
                &f.principal_filter,
                &f.host_filter,
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    match state.authorizer.delete(&filters) {
        Ok(per_filter) => {
            resp.filter_results = per_filter
                .into_iter()
                .map(|deleted| {
                    let mut r = DeleteAclsFilterResult::default();
                    r.matching_acls = deleted
                        .into_iter()
                        .map(|b| {
                            let mut m = DeleteAclsMatchingAcl::default();
                            m.resource_type = b.resource_type;
                            m.resource_name = str_bytes(b.name);
                            m.pattern_type = b.pattern;
                            m.principal = str_bytes(b.principal);
                            m.host = str_bytes(b.host);
                            m.operation = b.operation;
                            m.permission_type = b.permission;
                            m
                        })
                        .collect();
                    r
                })
                .collect();
        }
        Err(e) => {
            resp.filter_results = filters
                .iter()
                .map(|_| {
                    let mut r = DeleteAclsFilterResult::default();
                    r.error_code = ResponseError::UnknownServerError.code();
                    r.error_message = Some(str_bytes(e.to_string()));
                    r
                })
                .collect();
        }
    }
    resp
}
