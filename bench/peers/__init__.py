"""Peers benchmark: informerd's informer and Controller against client-go, controller-runtime,
kopf and the official client's SharedInformer, on one control plane, as child processes.

Modules: ``driver`` (the command: ``python -m bench.peers``), ``scenarios`` (the peers), ``child``
(the JSON-lines protocol and what a Python child measures), one module per Python peer
(``informerd_informer``, ``informerd_controller``, ``kubernetes_informer``, ``kopf_peer``,
``workqueue_peer``), ``gobuild`` (the Go peers in ``bench/clientgo`` and
``bench/controllerruntime``), ``objects`` (the pods and the writes), ``report`` (``results.json``
and ``RESULTS.md``).
"""
