"""The client: what runs on a participating machine.

`scan`, `facts` and `hostid` read the machine and `collect` builds its
report, with no network code in reach; `encrypt` seals it to the server's
pinned keys; `state` keeps the outbox and the history; `delivery` sends
the outbox and records what happened, through a transport, `https` or
`dns`, which alone talk to the network.  `cli` is the `pyweb-popcon`
command, `settings` its configuration and policy, `paths` the tree it
looks at (`--root`).
"""
