"""One blueprint per menu."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Register the page blueprints and the JSON API."""
    from app.blueprints.account.views import bp as account_bp
    from app.blueprints.accounts.views import bp as accounts_bp
    from app.blueprints.api import register_api
    from app.blueprints.auth.views import bp as auth_bp
    from app.blueprints.cluster.views import bp as cluster_bp
    from app.blueprints.domains.views import bp as domains_bp
    from app.blueprints.mail.views import bp as mail_bp
    from app.blueprints.mail_lists.views import bp as mail_lists_bp
    from app.blueprints.main.views import bp as main_bp
    from app.blueprints.operations.views import bp as operations_bp
    from app.blueprints.plans.views import bp as plans_bp
    from app.blueprints.system.views import bp as system_bp

    for bp in (auth_bp, main_bp, cluster_bp, operations_bp, account_bp, accounts_bp, domains_bp, mail_bp):
        app.register_blueprint(bp)
    for bp in (system_bp, mail_lists_bp, plans_bp):
        app.register_blueprint(bp)
    register_api(app)
    from app.ispmgr.views import bp as ispmgr_bp

    app.register_blueprint(ispmgr_bp)

    from app.menus import menu_for

    @app.context_processor
    def _menu():
        from flask_login import current_user

        return {"menu": menu_for(current_user) if current_user.is_authenticated else []}
