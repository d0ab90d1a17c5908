//! `iris user …`: account administration from the command line, straight on the database
//! (SQLite in WAL mode or PostgreSQL), so it works while the server runs.
use crate::cli::UserCommand;
use crate::config::Config;
use anyhow::Context;
use iris_model::{Login, Role, Secret};
use iris_services::{Accounts, NewAccount};
use std::process::ExitCode;

pub async fn run(config: Config, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = iris_store::Store::open(&config.database_url())
        .await
        .context("cannot open the database")?;
    let secret =
        crate::secrets::load_or_create(&config.auth.token_secret, &config.data_dir, "token.key")?;
    let accounts = Accounts::new(store.clone(), config.auth.clone(), secret)?;
    let result = command(&accounts, cmd).await;
    store.close().await;
    result
}

fn login(raw: &str) -> anyhow::Result<Login> {
    Login::parse(raw).map_err(|e| anyhow::anyhow!("invalid login {raw:?}: {e}"))
}

async fn command(accounts: &Accounts, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            login: raw,
            password,
            company,
            name,
            admin,
            superadmin,
        } => {
            let role = if superadmin {
                Role::Superadmin
            } else if admin {
                Role::Admin
            } else {
                Role::User
            };
            let user = accounts
                .create_user(
                    None,
                    NewAccount {
                        login: login(&raw)?,
                        password: Secret::new(password),
                        display_name: name,
                        company,
                        role,
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("cannot create {raw}: {e}"))?;
            println!(
                "created {} (id {}, company {:?}, role {})",
                user.login, user.id, user.company, user.role
            );
        }
        UserCommand::List { text, json } => {
            let users = accounts.list_users(None, text.as_deref(), 500, 0).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!(
                    "{:<6} {:<36} {:<24} {:<20} ROLE",
                    "ID", "LOGIN", "NAME", "COMPANY"
                );
                for u in &users {
                    println!(
                        "{:<6} {:<36} {:<24} {:<20} {}",
                        u.id, u.login, u.display_name, u.company, u.role
                    );
                }
                println!("{} user(s)", users.len());
            }
        }
        UserCommand::Del { login: raw } => {
            let user = accounts
                .user_by_login(&login(&raw)?)
                .await
                .map_err(|e| anyhow::anyhow!("{raw}: {e}"))?;
            accounts.delete_user(None, user.id).await?;
            println!("deleted {}", user.login);
        }
        UserCommand::Passwd {
            login: raw,
            password,
        } => {
            let user = accounts
                .user_by_login(&login(&raw)?)
                .await
                .map_err(|e| anyhow::anyhow!("{raw}: {e}"))?;
            accounts
                .set_password(None, user.id, &Secret::new(password))
                .await
                .map_err(|e| anyhow::anyhow!("cannot set the password of {raw}: {e}"))?;
            println!(
                "password of {} changed; their sessions were ended",
                user.login
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
