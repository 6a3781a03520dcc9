"""Mail → Mail domains and Mailboxes (proxied to the node holding the owner's mail role)."""
