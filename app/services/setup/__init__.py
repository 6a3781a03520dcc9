"""Adding a node over SSH: host-key pinning, the root bootstrap and the 8 setup steps (docs/node-setup.md).

The root password or private key is used once, in `bootstrap` (steps 1-3 as root, in the
process that received it), and is never stored or logged. Every later connection, the setup
job included, logs in as `ispmaster` with the master's own ed25519 key, and verifies the node's
host key against the fingerprint pinned at first use. Every step reads the node's current
state first and changes only what differs, so re-running the job finishes a half-set-up node.

One module a concern, each importing only those before it: errors; paths (where the agent lives,
its systemd unit and supervised init script); inputs; ssh; steps; lifecycle.
"""

from __future__ import annotations

from app.services.setup.errors import (
    HostKeyMismatch,
    InputErrors,
    SetupError,
)
from app.services.setup.inputs import (
    FINGERPRINT_RE,
    NodeInput,
    parse_private_key,
    validate_apt_source,
    validate_node_input,
)
from app.services.setup.lifecycle import (
    add_node,
    bootstrap,
    can_retry,
    decommission,
    fail_setup,
    reinstall_agent,
    run_setup_steps,
    setup_lock_holder,
    setup_steps,
    setup_to_dict,
    start_setup,
    start_update_agent,
)
from app.services.setup.paths import (
    ADMIN_USER,
    AGENT_PORT,
    APT_LIST,
    DECOMMISSION_SCRIPT,
    INIT_SCRIPT,
    RELOAD_COMMANDS,
    SYSTEMD,
    SYSV,
    UNIT_TEXT,
    agent_control,
    reload_commands,
    render_init_script,
)
from app.services.setup.ssh import (
    connect,
    fetch_host_key,
    fingerprint_of,
    master_key,
    master_key_path,
    master_public_key,
)
from app.services.setup.steps import (
    STEPS,
    Session,
    copy_templates_over_ssh,
    install_service,
    step_apt_source,
    step_check_os,
    step_configure_agent,
    step_copy_templates,
    step_create_admin,
    step_install_agent,
    step_register_key,
    wait_for_agent,
    wheelhouse_dir,
)

__all__ = [
    "ADMIN_USER",
    "AGENT_PORT",
    "APT_LIST",
    "DECOMMISSION_SCRIPT",
    "FINGERPRINT_RE",
    "HostKeyMismatch",
    "INIT_SCRIPT",
    "InputErrors",
    "NodeInput",
    "RELOAD_COMMANDS",
    "STEPS",
    "SYSTEMD",
    "SYSV",
    "Session",
    "SetupError",
    "UNIT_TEXT",
    "add_node",
    "agent_control",
    "bootstrap",
    "can_retry",
    "connect",
    "copy_templates_over_ssh",
    "decommission",
    "fail_setup",
    "fetch_host_key",
    "fingerprint_of",
    "install_service",
    "master_key",
    "master_key_path",
    "master_public_key",
    "parse_private_key",
    "reload_commands",
    "render_init_script",
    "reinstall_agent",
    "run_setup_steps",
    "setup_lock_holder",
    "setup_steps",
    "setup_to_dict",
    "start_setup",
    "start_update_agent",
    "step_apt_source",
    "step_check_os",
    "step_configure_agent",
    "step_copy_templates",
    "step_create_admin",
    "step_install_agent",
    "step_register_key",
    "validate_apt_source",
    "validate_node_input",
    "wait_for_agent",
    "wheelhouse_dir",
]
