"""One blueprint per sidebar entry (app/menus.py), named like the entry's slug, with its templates in
templates/<name>/ and its page tests in tests/<name>/; besides them login, the start page, the user's own
account, the JSON API and the ISPmanager-compatible endpoint."""

from flask import Flask

from app.blueprints.account.views import bp as account_bp
from app.blueprints.api import register_api
from app.blueprints.auth.views import bp as auth_bp
from app.blueprints.certificates.views import bp as certificates_bp
from app.blueprints.dashboard.views import bp as dashboard_bp
from app.blueprints.databases.views import bp as databases_bp
from app.blueprints.dbusers.views import bp as dbusers_bp
from app.blueprints.domains.views import bp as domains_bp
from app.blueprints.firewall.views import bp as firewall_bp
from app.blueprints.home.views import bp as home_bp
from app.blueprints.mail_blacklist.views import bp as mail_blacklist_bp
from app.blueprints.mail_whitelist.views import bp as mail_whitelist_bp
from app.blueprints.mailboxes.views import bp as mailboxes_bp
from app.blueprints.maildomains.views import bp as maildomains_bp
from app.blueprints.main.views import bp as main_bp
from app.blueprints.nodes.views import bp as nodes_bp
from app.blueprints.operations.views import bp as operations_bp
from app.blueprints.plans.views import bp as plans_bp
from app.blueprints.policies.views import bp as policies_bp
from app.blueprints.scheduler.views import bp as scheduler_bp
from app.blueprints.sync.views import bp as sync_bp
from app.blueprints.users.views import bp as users_bp
from app.blueprints.webdomains.views import bp as webdomains_bp
from app.ispmgr.views import bp as ispmgr_bp

PAGE_BLUEPRINTS = (auth_bp, main_bp, dashboard_bp, home_bp, account_bp,
                   users_bp, plans_bp, webdomains_bp, certificates_bp, domains_bp, maildomains_bp, mailboxes_bp,
                   databases_bp, dbusers_bp,
                   mail_whitelist_bp, mail_blacklist_bp, firewall_bp, scheduler_bp, nodes_bp, policies_bp, sync_bp,
                   operations_bp)


def register_blueprints(app: Flask) -> None:
    """Register the page blueprints, the JSON API and the ISPmanager-compatible endpoint."""
    for bp in PAGE_BLUEPRINTS:
        app.register_blueprint(bp)
    register_api(app)
    app.register_blueprint(ispmgr_bp)
