//! Accounts and tenants: creating users and companies, logging in with back-off and lock-out,
//! sessions and tokens, password changes, and the tenant rules (a company admin sees and
//! changes only their own company; a superadmin sees all). No wire formats here.
use crate::clock::now_ms;
use crate::hash_pool::{HashPool, PoolStats};
use crate::password::{self, Hasher};
use crate::tokens::{random_token, refresh_hash, TokenError, TokenKey};
use crate::Error;
use iris_model::{Company, CompanyId, Login, Role, Secret, User, UserId};
use iris_store::{NewUser, Store};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Settings of the accounts service (`[auth]` in the configuration file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a login session (refresh token), in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Failed logins allowed before the login is locked.
    pub max_failed_logins: u32,
    /// First lock-out duration in seconds; doubles with every further failure, up to 15 minutes.
    pub lockout_secs: u64,
    /// argon2id memory cost, KiB.
    pub argon2_memory_kib: u32,
    /// argon2id passes.
    pub argon2_passes: u32,
    /// Password hashes computed at once; 0 means one per CPU core. Each keeps one
    /// `argon2_memory_kib` area allocated after first use.
    pub argon2_max_concurrent: u32,
    /// Password checks allowed to wait for a free slot; beyond that a login is refused as
    /// busy (HTTP 503, XMPP temporary-auth-failure) without counting as a failed attempt.
    pub argon2_max_queue: u32,
    /// Key that signs access tokens. Empty: generated once and kept in the data directory.
    /// Set it (the same on every node) when several api nodes serve one domain.
    pub token_secret: Secret,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            max_failed_logins: 5,
            lockout_secs: 30,
            argon2_memory_kib: 19 * 1024,
            argon2_passes: 2,
            argon2_max_concurrent: 0,
            argon2_max_queue: 64,
            token_secret: Secret::default(),
        }
    }
}

const MAX_LOCKOUT_MS: i64 = 15 * 60 * 1000;
const MAX_DISPLAY_NAME: usize = 128;
const MAX_COMPANY_NAME: usize = 128;

/// Who is calling: an authenticated user and their session.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub session_id: String,
}

impl Actor {
    fn can_manage(&self, company: CompanyId) -> bool {
        match self.user.role {
            Role::Superadmin => true,
            Role::Admin => self.user.company_id == company,
            Role::User => false,
        }
    }
}

/// A login's result: tokens to present on later calls.
#[derive(Debug, Clone, Serialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub user: User,
}

/// What an operator or admin gives to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: Login,
    pub password: Secret,
    pub display_name: Option<String>,
    /// Company name; `None` puts the user in the caller's company (or "default" for the CLI).
    pub company: Option<String>,
    pub role: Role,
}

/// The accounts service; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: AccountsConfig,
    hashes: HashPool,
    tokens: TokenKey,
    /// A valid hash of a random password, verified against when a login does not exist, so
    /// unknown and known logins take the same time.
    dummy_hash: String,
    /// Users whose display name changed (their contacts' rosters show it).
    renamed: tokio::sync::broadcast::Sender<UserId>,
    deleted: tokio::sync::broadcast::Sender<DeletedUser>,
}

impl Accounts {
    /// Builds the service; `token_secret` must not be empty.
    pub fn new(store: Store, config: AccountsConfig, token_secret: Secret) -> Result<Self, Error> {
        if token_secret.is_empty() {
            return Err(Error::Internal("empty token secret".into()));
        }
        let hasher = Hasher::new(config.argon2_memory_kib, config.argon2_passes)?;
        let hashes = HashPool::new(
            hasher,
            usize::try_from(config.argon2_max_concurrent).unwrap_or(1),
            usize::try_from(config.argon2_max_queue).unwrap_or(0),
        );
        let dummy_hash = hashes.hash_now(&random_token())?;
        Ok(Accounts {
            inner: Arc::new(Inner {
                store,
                config,
                hashes,
                tokens: TokenKey::new(token_secret),
                dummy_hash,
                renamed: tokio::sync::broadcast::channel(256).0,
                deleted: tokio::sync::broadcast::channel(256).0,
            }),
        })
    }

    /// Subscribes to display-name changes (for roster pushes to the user's contacts).
    pub fn subscribe_renames(&self) -> tokio::sync::broadcast::Receiver<UserId> {
        self.inner.renamed.subscribe()
    }

    /// Subscribes to account deletions (for roster pushes to the user's former contacts).
    pub fn subscribe_deletions(&self) -> tokio::sync::broadcast::Receiver<DeletedUser> {
        self.inner.deleted.subscribe()
    }

    /// The store behind the service.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Counters of the password-hashing pool.
    pub fn hash_stats(&self) -> PoolStats {
        self.inner.hashes.stats()
    }

    async fn hash(&self, password: &Secret) -> Result<String, Error> {
        self.inner.hashes.hash(password).await
    }

    /// Derives the SCRAM-SHA-1 and SCRAM-SHA-256 keys of `password` for XMPP (random salt,
    /// [`SCRAM_ITERATIONS`]); the password itself is never stored. Called before anything is
    /// written, so a password SASLprep rejects changes nothing.
    async fn derive_scram(&self, password: &Secret) -> Result<Vec<iris_store::ScramRow>, Error> {
        let pw = password.clone();
        tokio::task::spawn_blocking(move || scram_rows(pw.expose()))
            .await
            .map_err(|e| Error::Internal(format!("scram task: {e}")))?
    }

    /// `Err(Busy)` when the hashing pool is full (not a failed attempt).
    async fn verify(&self, password: &Secret, hash: String) -> Result<bool, Error> {
        self.inner.hashes.verify(password, hash).await
    }

    /// Creates an account. `actor = None` is the operator (CLI): any company, any role, the
    /// company is created if missing. An admin creates users and admins in their own company
    /// only; a superadmin anywhere (creating missing companies).
    pub async fn create_user(&self, actor: Option<&Actor>, new: NewAccount) -> Result<User, Error> {
        let display_name = match new.display_name.as_deref().map(str::trim) {
            Some("") | None => new.login.localpart().to_owned(),
            Some(name) => name.to_owned(),
        };
        check_display_name(&display_name)?;
        let (company, may_create) = match actor {
            None => (
                new.company.clone().unwrap_or_else(|| "default".into()),
                true,
            ),
            Some(a) => match a.user.role {
                Role::Superadmin => (
                    new.company
                        .clone()
                        .unwrap_or_else(|| a.user.company.clone()),
                    true,
                ),
                Role::Admin => {
                    if new.role == Role::Superadmin
                        || new.company.as_deref().is_some_and(|c| c != a.user.company)
                    {
                        return Err(Error::Forbidden);
                    }
                    (a.user.company.clone(), false)
                }
                Role::User => return Err(Error::Forbidden),
            },
        };
        check_company_name(&company)?;
        let scram = self.derive_scram(&new.password).await?;
        let hash = self.hash(&new.password).await?;
        let user = self
            .inner
            .store
            .create_user(
                NewUser {
                    login: &new.login,
                    display_name: &display_name,
                    password_hash: &hash,
                    role: new.role,
                },
                &company,
                may_create,
                now_ms(),
            )
            .await?
            .ok_or(Error::NotFound("company"))?;
        self.inner.store.set_scram_keys(user.id, &scram).await?;
        metrics::counter!("iris_accounts_created_total").increment(1);
        tracing::info!(login = %user.login, company = %user.company, role = %user.role, "account created");
        Ok(user)
    }

    /// Checks a login and password with back-off: after `max_failed_logins` failures the login
    /// is locked for `lockout_secs`, doubling with each further failure. Shared by REST and
    /// XMPP (PLAIN here; SCRAM through [`Accounts::login_allowed`] and
    /// [`Accounts::record_failed_login`]) so every mechanism counts against the same budget.
    /// Unknown logins are checked against a dummy hash, so they take as long as known ones.
    /// `Err(Busy)` when too many checks are queued; that does not count as a failure.
    pub async fn check_password(&self, login: &str, password: &Secret) -> Result<User, Error> {
        let key = lockout_key(login);
        let failures = self.lock_state(&key).await?;
        let found = match Login::parse(&key) {
            Ok(l) => self.inner.store.user_by_login(&l).await?,
            Err(_) => None,
        };
        let (user, hash) = match found {
            Some((u, h)) => (Some(u), h),
            None => (None, self.inner.dummy_hash.clone()),
        };
        let ok = self.verify(password, hash).await? && user.is_some();
        match user {
            Some(user) if ok => {
                if failures > 0 {
                    self.inner.store.clear_login_failures(&key).await?;
                }
                Ok(user)
            }
            _ => {
                self.count_failure(&key).await?;
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// `Err(Locked)` while `login` is locked out, else the failures counted so far; for
    /// mechanisms that check the password elsewhere (SCRAM), before they start.
    pub async fn login_allowed(&self, login: &str) -> Result<i64, Error> {
        self.lock_state(&lockout_key(login)).await
    }

    /// Counts a failed login made with another mechanism (SCRAM) against the shared budget.
    pub async fn record_failed_login(&self, login: &str) -> Result<(), Error> {
        self.count_failure(&lockout_key(login)).await
    }

    /// Forgets earlier failures after a successful login made with another mechanism.
    pub async fn record_successful_login(&self, login: &str) -> Result<(), Error> {
        let key = lockout_key(login);
        if self.inner.store.login_failures(&key).await?.0 > 0 {
            self.inner.store.clear_login_failures(&key).await?;
        }
        Ok(())
    }

    /// Failures so far, or `Locked` if the lock is still running.
    async fn lock_state(&self, key: &str) -> Result<i64, Error> {
        let now = now_ms();
        let (failures, locked_until) = self.inner.store.login_failures(key).await?;
        if locked_until > now {
            let retry_after_secs = u64::try_from((locked_until - now + 999) / 1000).unwrap_or(1);
            return Err(Error::Locked { retry_after_secs });
        }
        Ok(failures)
    }

    /// One more failure, counted atomically in the store (failures of concurrent streams and
    /// REST calls are never lost), then the lock it earns.
    async fn count_failure(&self, key: &str) -> Result<(), Error> {
        let now = now_ms();
        let failures = self.inner.store.increment_login_failures(key, now).await?;
        let max = i64::from(self.inner.config.max_failed_logins);
        if failures >= max {
            let base = i64::try_from(self.inner.config.lockout_secs).unwrap_or(30) * 1000;
            let doubling = u32::try_from((failures - max).min(20)).unwrap_or(20);
            let locked_until = now + base.saturating_mul(1i64 << doubling).min(MAX_LOCKOUT_MS);
            self.inner.store.lock_login(key, locked_until).await?;
        }
        metrics::counter!("iris_login_failures_total").increment(1);
        // The login is attacker-controlled: log a bounded prefix only.
        let shown: String = key.chars().take(64).collect();
        tracing::info!(login = %shown, failures, "failed login");
        Ok(())
    }

    /// Logs in: checks the password and opens a session.
    pub async fn login(&self, login: &str, password: &Secret) -> Result<Tokens, Error> {
        let user = self.check_password(login, password).await?;
        let now = now_ms();
        let sid = random_token();
        let refresh = format!("{sid}.{}", random_token());
        let expires = now + ttl_ms(self.inner.config.refresh_token_ttl_secs);
        self.inner
            .store
            .create_session(&sid, user.id, &refresh_hash(&refresh), now, expires)
            .await?;
        metrics::counter!("iris_logins_total").increment(1);
        Ok(self.tokens_for(user, &sid, refresh, now))
    }

    fn tokens_for(&self, user: User, sid: &str, refresh: String, now: i64) -> Tokens {
        let ttl = self.inner.config.access_token_ttl_secs;
        let access = self.inner.tokens.sign(user.id, sid, now + ttl_ms(ttl));
        Tokens {
            access_token: access,
            refresh_token: refresh,
            expires_in: ttl,
            user,
        }
    }

    /// Exchanges a refresh token for new tokens; the old refresh token stops working.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let now = now_ms();
        let old_hash = refresh_hash(refresh_token);
        let store = &self.inner.store;
        let session = store
            .session_by_refresh(&old_hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !session.is_active(now) {
            return Err(Error::Unauthenticated);
        }
        let new_refresh = format!("{}.{}", session.id, random_token());
        let expires = now + ttl_ms(self.inner.config.refresh_token_ttl_secs);
        if !store
            .rotate_refresh(&session.id, &old_hash, &refresh_hash(&new_refresh), expires)
            .await?
        {
            return Err(Error::Unauthenticated);
        }
        let user = store
            .user(session.user_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        Ok(self.tokens_for(user, &session.id, new_refresh, now))
    }

    /// Resolves an access token to its actor: signature, expiry, and a live session.
    pub async fn authenticate(&self, access_token: &str) -> Result<Actor, Error> {
        let now = now_ms();
        let claims = self.inner.tokens.verify(access_token, now).map_err(|e| {
            if e != TokenError::Expired {
                metrics::counter!("iris_token_rejections_total").increment(1);
            }
            Error::Unauthenticated
        })?;
        let store = &self.inner.store;
        let session = store
            .session(&claims.sid)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !session.is_active(now) || session.user_id.0 != claims.uid {
            return Err(Error::Unauthenticated);
        }
        let user = store
            .user(session.user_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        Ok(Actor {
            user,
            session_id: session.id,
        })
    }

    /// Ends the actor's session: its access and refresh tokens stop working at once.
    pub async fn logout(&self, actor: &Actor) -> Result<(), Error> {
        self.inner
            .store
            .revoke_session(&actor.session_id, now_ms())
            .await?;
        Ok(())
    }

    /// Changes the actor's own password after checking the current one; other sessions end.
    pub async fn change_password(
        &self,
        actor: &Actor,
        current: &Secret,
        new: &Secret,
    ) -> Result<(), Error> {
        self.check_password(actor.user.login.as_str(), current)
            .await?;
        let scram = self.derive_scram(new).await?;
        let hash = self.hash(new).await?;
        self.inner
            .store
            .set_password_hash(actor.user.id, &hash, Some(&actor.session_id), now_ms())
            .await?;
        self.inner
            .store
            .set_scram_keys(actor.user.id, &scram)
            .await?;
        Ok(())
    }

    /// Sets a user's password (operator or admin of their company); all their sessions end.
    pub async fn set_password(
        &self,
        actor: Option<&Actor>,
        user: UserId,
        new: &Secret,
    ) -> Result<(), Error> {
        let target = self.visible_user(actor, user).await?;
        if let Some(a) = actor {
            if !a.can_manage(target.company_id) || (target.role > a.user.role) {
                return Err(Error::Forbidden);
            }
        }
        let scram = self.derive_scram(new).await?;
        let hash = self.hash(new).await?;
        self.inner
            .store
            .set_password_hash(target.id, &hash, None, now_ms())
            .await?;
        self.inner.store.set_scram_keys(target.id, &scram).await?;
        self.inner
            .store
            .clear_login_failures(target.login.as_str())
            .await?;
        Ok(())
    }

    /// The user by id, if the actor may see them (same company, or superadmin, or operator).
    pub async fn visible_user(&self, actor: Option<&Actor>, id: UserId) -> Result<User, Error> {
        let user = self
            .inner
            .store
            .user(id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        match actor {
            Some(a) if a.user.role != Role::Superadmin && a.user.company_id != user.company_id => {
                Err(Error::NotFound("user"))
            }
            _ => Ok(user),
        }
    }

    /// The user by login, for the operator (CLI).
    pub async fn user_by_login(&self, login: &Login) -> Result<User, Error> {
        Ok(self
            .inner
            .store
            .user_by_login(login)
            .await?
            .ok_or(Error::NotFound("user"))?
            .0)
    }

    /// Users the actor may see: their company's (everyone's for a superadmin or the operator),
    /// optionally filtered by text in login or display name.
    pub async fn list_users(
        &self,
        actor: Option<&Actor>,
        search: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<User>, Error> {
        let company = match actor {
            Some(a) if a.user.role != Role::Superadmin => Some(a.user.company_id),
            _ => None,
        };
        if search.is_some_and(|s| s.len() > 128) {
            return Err(Error::invalid("q", "search text is at most 128 bytes"));
        }
        let limit = i64::from(limit.clamp(1, 500));
        Ok(self
            .inner
            .store
            .users(company, search, limit, i64::from(offset))
            .await?)
    }

    /// Changes display name (self or admin) and role (admin of the company; never above
    /// the actor's own role; the last superadmin keeps their role).
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        display_name: Option<String>,
        role: Option<Role>,
    ) -> Result<User, Error> {
        let target = self.visible_user(Some(actor), id).await?;
        let is_self = target.id == actor.user.id;
        if !is_self && !actor.can_manage(target.company_id) {
            return Err(Error::Forbidden);
        }
        if let Some(role) = role {
            if role > actor.user.role
                || !actor.can_manage(target.company_id)
                || target.role > actor.user.role
            {
                return Err(Error::Forbidden);
            }
            if target.role == Role::Superadmin
                && role != Role::Superadmin
                && self.inner.store.count_role(Role::Superadmin).await? <= 1
            {
                return Err(Error::Conflict("the last superadmin"));
            }
        }
        let display_name = display_name.map(|d| d.trim().to_owned());
        if let Some(d) = &display_name {
            check_display_name(d)?;
        }
        let user = self
            .inner
            .store
            .update_user(id, display_name.as_deref(), role, now_ms())
            .await?
            .ok_or(Error::NotFound("user"))?;
        if display_name.is_some() {
            // no subscriber is fine: nobody is online to tell
            let _ = self.inner.renamed.send(id);
        }
        Ok(user)
    }

    /// Deletes a user (operator, or admin of their company; not oneself through the API).
    pub async fn delete_user(&self, actor: Option<&Actor>, id: UserId) -> Result<(), Error> {
        let target = self.visible_user(actor, id).await?;
        if let Some(a) = actor {
            if !a.can_manage(target.company_id)
                || target.role > a.user.role
                || a.user.id == target.id
            {
                return Err(Error::Forbidden);
            }
        }
        // the contact rows go with the account: remember whose rosters held it
        let contacts = self.inner.store.contacts(target.id).await?;
        self.inner.store.delete_user(target.id).await?;
        tracing::info!(login = %target.login, "account deleted");
        // No subscriber is fine: nobody is online to push to.
        let _ = self.inner.deleted.send(DeletedUser {
            id: target.id,
            login: target.login.clone(),
            contacts: contacts.into_iter().map(|c| c.user_id).collect(),
        });
        Ok(())
    }

    /// Every company (superadmin), or the actor's own.
    pub async fn list_companies(&self, actor: &Actor) -> Result<Vec<Company>, Error> {
        let all = self.inner.store.companies().await?;
        Ok(match actor.user.role {
            Role::Superadmin => all,
            _ => all
                .into_iter()
                .filter(|c| c.id == actor.user.company_id)
                .collect(),
        })
    }

    /// Creates a company (superadmin only).
    pub async fn create_company(&self, actor: &Actor, name: &str) -> Result<Company, Error> {
        if actor.user.role != Role::Superadmin {
            return Err(Error::Forbidden);
        }
        let name = name.trim();
        check_company_name(name)?;
        Ok(self.inner.store.create_company(name, now_ms()).await?)
    }

    /// Deletes a company and its users (superadmin only; not their own company).
    pub async fn delete_company(&self, actor: &Actor, id: CompanyId) -> Result<(), Error> {
        if actor.user.role != Role::Superadmin {
            return Err(Error::Forbidden);
        }
        if actor.user.company_id == id {
            return Err(Error::Conflict("your own company"));
        }
        if !self.inner.store.delete_company(id).await? {
            return Err(Error::NotFound("company"));
        }
        Ok(())
    }
}

/// An account that was deleted, with the users whose contact lists held it.
#[derive(Debug, Clone)]
pub struct DeletedUser {
    pub id: UserId,
    pub login: Login,
    pub contacts: Vec<UserId>,
}

/// PBKDF2 iterations of stored SCRAM keys (RFC 7677 recommends at least 4096).
pub const SCRAM_ITERATIONS: u32 = 4096;

fn scram_rows(password: &str) -> Result<Vec<iris_store::ScramRow>, Error> {
    use iris_xmpp::scram::{derive_keys, ScramHash};
    use rand::RngCore;
    [
        (ScramHash::Sha1, "SCRAM-SHA-1"),
        (ScramHash::Sha256, "SCRAM-SHA-256"),
    ]
    .into_iter()
    .map(|(hash, mechanism)| {
        let mut salt = vec![0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let keys = derive_keys(password, &salt, SCRAM_ITERATIONS, hash).map_err(|_| {
            Error::invalid(
                "password",
                "the password contains characters SASLprep forbids",
            )
        })?;
        Ok(iris_store::ScramRow {
            mechanism: mechanism.to_owned(),
            salt: keys.salt,
            iterations: i64::from(keys.iterations),
            stored_key: keys.stored_key,
            server_key: keys.server_key,
        })
    })
    .collect()
}

/// Lock-out is per normalised login text (also for logins that do not exist).
fn lockout_key(login: &str) -> String {
    login.trim().to_ascii_lowercase()
}

fn ttl_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}

fn check_display_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.chars().count() > MAX_DISPLAY_NAME
        || name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "display_name",
            format!(
                "a display name has 1 to {MAX_DISPLAY_NAME} characters and no control characters"
            ),
        ));
    }
    Ok(())
}

fn check_company_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.chars().count() > MAX_COMPANY_NAME
        || name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "company",
            format!(
                "a company name has 1 to {MAX_COMPANY_NAME} characters and no control characters"
            ),
        ));
    }
    Ok(())
}

/// Re-exported so callers can check a password before sending it anywhere.
pub use password::check_policy;
