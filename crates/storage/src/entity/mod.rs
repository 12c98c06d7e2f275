//! sea-orm entities, one module per table.

pub mod audit_event;
pub mod audit_event_entity;
pub mod cluster;
pub mod data_commit;
pub mod data_issue;
pub mod data_version;
pub mod enterprise;
pub mod indicator;
pub mod objection;
pub mod observation;
pub mod observation_revision;
pub mod project;
pub mod project_period;
pub mod publication;
pub mod ranking_entry;
pub mod ranking_run;
pub mod region;
pub mod scheme;
pub mod screening_rule;
pub mod target;
pub mod zone;
pub mod zone_tag;
