//! End-to-end tests: the real server on port 0, real Postgres (a fresh database per test),
//! real Redis (a unique key prefix per test), and the mock provider speaking OpenAI's wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod fake_stripe;
mod helpers;
mod smtp_sink;
mod tenant_helpers;

mod alerts;
mod api_description;
mod auth;
mod cache;
mod chat;
mod cli;
mod clouds;
mod completions;
mod conformance;
mod credits;
mod dashboard;
mod embeddings;
mod errors;
mod finance;
mod limits;
mod lots;
mod messages;
mod models;
mod money;
mod no_prompt_at_rest;
mod observability;
mod openapi;
mod operators;
mod overage;
mod rate_limits;
mod real_catalog;
mod responses;
mod routes;
mod routing;
mod strict_input;
mod stripe;
mod tenant_roles;
mod tenants;
