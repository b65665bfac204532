"""The stream runtime: what runs the pipeline against the broker and keeps its promises while it does. The worker
(`worker`) and its agency lanes (`lanes`), which hand events over in the order agencies published them
(`publication_order`, `prompt_fetch`) and take turns at the case store, urgent work first (`store_gate`); the
retry ladder (`retry`), the dead letters (`dead_letters`) and the store's copies of what a broker may lose
(`queues`); the topics the hub creates (`topics`); agency signatures checked and records sealed at the edges
(`protection`); waiting out an unavailable dependency (`in_place`); and the embedded broker and the child
processes of `hub up` (`broker`, `processes`).
"""
