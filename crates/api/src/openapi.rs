//! The OpenAPI 3 document of `/api/v1`, generated from the handlers' annotations.
use crate::routes::{auth, bubbles, companies, contacts, health, ice, me, users};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Iris API", description = "REST API of Iris, the self-hosted unified-communications platform."),
    paths(
        health::healthz, health::readyz, health::metrics,
        auth::login, auth::refresh, auth::logout, ice::ice_servers,
        me::show, me::update, me::change_password,
        users::directory, users::list, users::create, users::show, users::update, users::remove, users::set_password,
        companies::list, companies::create, companies::remove,
        contacts::list, contacts::invite, contacts::accept, contacts::decline, contacts::relabel, contacts::remove,
        bubbles::list, bubbles::create, bubbles::show, bubbles::update, bubbles::remove,
        bubbles::members, bubbles::add_member, bubbles::remove_member,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Login sessions and tokens"),
        (name = "me", description = "The caller's own account"),
        (name = "users", description = "User administration and the company directory"),
        (name = "companies", description = "Tenants"),
        (name = "contacts", description = "Contacts and invitations (the XMPP roster)"),
        (name = "bubbles", description = "Group chats (the XMPP multi-user chat rooms)"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "calls", description = "What calls need: ICE servers"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
