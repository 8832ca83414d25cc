"""The words the sample team uses: one vocabulary per field of expertise, plus small talk.

Each field has its own nouns, symptoms, fixes and links, so a text classifier has something real to
learn (who talks about helm charts, who about invoices); the small talk carries almost no signal.
All of this is constant data: the generator only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One field of expertise: the words its people and its askers use."""

    key: str
    things: tuple[str, ...]
    problems: tuple[str, ...]
    fixes: tuple[str, ...]
    commands: tuple[str, ...]
    snippets: tuple[str, ...]
    links: tuple[tuple[str, str], ...]  # (url, label); label may be ""


FIELDS: tuple[Field, ...] = (
    Field(
        key="infra",
        things=("kubernetes cluster", "helm chart", "ingress controller", "node pool", "terraform state",
                "k8s deployment", "cluster autoscaler", "etcd", "load balancer", "prod namespace",
                "pod disruption budget", "nginx ingress", "staging cluster", "service mesh"),
        problems=("crashlooping", "OOMKilled", "stuck in Pending", "timing out on health checks",
                  "failing readiness probes", "running out of disk", "throttled on CPU", "evicting pods"),
        fixes=("roll back the helm release", "bump the memory limit to 2Gi", "drain the node and cordon it",
               "re-apply the terraform plan", "scale the node pool to 6", "restart the ingress pods",
               "raise the HPA max replicas"),
        commands=("kubectl get pods -n prod", "kubectl rollout restart deploy/api", "helm rollback api 42",
                  "terraform plan -target=module.eks", "kubectl describe node ip-10-0-3-17"),
        snippets=("resources:\n  limits:\n    memory: 2Gi\n    cpu: 500m",
                  "$ kubectl get pods -n prod | grep -v Running\napi-7d9f8b-x2kq   0/1   CrashLoopBackOff   12"),
        links=(("https://grafana.acme.io/d/k8s-nodes", "node dashboard"),
               ("https://github.com/acme/infra/pull/{n}", "PR #{n}"),
               ("https://runbooks.acme.io/k8s/crashloop", "")),
    ),
    Field(
        key="frontend",
        things=("react component", "checkout page", "webpack bundle", "css grid", "login form",
                "typescript types", "design system button", "nav bar", "storybook", "vite build",
                "hydration", "dashboard table"),
        problems=("rendering twice", "throwing a hydration mismatch", "broken on Safari",
                  "blowing up the bundle size", "flickering on load", "not responsive on small screens",
                  "showing a blank page"),
        fixes=("memoize the selector", "wrap it in useEffect", "add the polyfill for Safari",
               "lazy load the chart module", "fix the z-index on the modal", "bump react-query"),
        commands=("npm run build -- --analyze", "yarn storybook", "npx tsc --noEmit",
                  "useEffect(() => {}, [])"),
        snippets=("const total = useMemo(() => items.reduce((a, b) => a + b.price, 0), [items]);",
                  "<Button variant=\"primary\" onClick={submit}>Pay now</Button>"),
        links=(("https://github.com/acme/web/pull/{n}", "PR #{n}"),
               ("https://storybook.acme.io/?path=/story/button", "storybook"),
               ("https://caniuse.com/css-grid", "")),
    ),
    Field(
        key="data",
        things=("dbt model", "warehouse query", "orders table", "airflow dag", "snowflake warehouse",
                "sql join", "nightly etl", "revenue dashboard", "events table", "data pipeline",
                "duckdb extract", "looker explore"),
        problems=("returning duplicate rows", "taking 40 minutes", "missing yesterday's partition",
                  "failing its unique test", "double counting revenue", "out of date since Monday"),
        fixes=("add a qualify row_number() dedupe", "backfill the partition", "rerun the dag from the failed task",
               "add an incremental filter on updated_at", "cluster the table by event_date"),
        commands=("dbt build --select orders+", "select count(*) from events where dt = current_date",
                  "airflow dags trigger nightly_etl"),
        snippets=("select order_id, count(*)\nfrom orders\ngroup by 1\nhaving count(*) > 1;",
                  "qualify row_number() over (partition by user_id order by updated_at desc) = 1"),
        links=(("https://looker.acme.io/explore/orders", "orders explore"),
               ("https://github.com/acme/analytics/pull/{n}", "PR #{n}"),
               ("https://airflow.acme.io/dags/nightly_etl/grid", "")),
    ),
    Field(
        key="billing",
        things=("invoice", "stripe webhook", "subscription plan", "refund", "proration", "vat number",
                "credit note", "payment method", "annual plan renewal", "dunning email", "tax rate"),
        problems=("charged twice", "missing the VAT line", "not syncing to the ledger", "stuck in past_due",
                  "showing the wrong currency", "refunded but still active"),
        fixes=("issue a credit note", "resend the invoice", "replay the stripe webhook",
               "move them to the annual plan", "void the duplicate charge"),
        commands=("stripe events resend evt_1NqX", "billing-cli refund --invoice in_3345"),
        snippets=("if invoice.status == \"past_due\" and invoice.attempt_count > 3:\n    cancel(subscription)",),
        links=(("https://dashboard.stripe.com/invoices/in_{n}", "invoice"),
               ("https://github.com/acme/billing/pull/{n}", "PR #{n}")),
    ),
    Field(
        key="security",
        things=("sso config", "okta group", "iam role", "api token", "cve", "pentest report",
                "soc2 evidence", "secret rotation", "mfa policy", "vpn cert", "audit log"),
        problems=("leaked in a public gist", "expiring on Friday", "flagged by the scanner",
                  "granting admin to everyone", "missing from the audit log", "not enforced for contractors"),
        fixes=("rotate the key right now", "revoke the token and reissue", "scope the iam role down",
               "patch the base image for the cve", "enforce mfa in okta"),
        commands=("aws iam list-access-keys --user-name ci", "trivy image acme/api:latest",
                  "vault kv get secret/prod/db"),
        snippets=("{\n  \"Effect\": \"Deny\",\n  \"Action\": \"s3:*\",\n  \"Resource\": \"*\"\n}",),
        links=(("https://nvd.nist.gov/vuln/detail/CVE-2024-{n}", ""),
               ("https://acme.okta.com/admin/groups", "okta groups")),
    ),
    Field(
        key="mobile",
        things=("ios build", "android release", "push notification", "testflight", "app store review",
                "react native bridge", "deep link", "crashlytics report", "play console", "offline sync"),
        problems=("crashing on launch", "rejected by review", "not arriving on android 14",
                  "stuck in processing", "draining the battery", "broken on iPad"),
        fixes=("bump the build number", "resubmit with the privacy manifest", "fix the fcm token refresh",
               "ship a hotfix through codepush", "pin the cocoapods version"),
        commands=("fastlane ios beta", "./gradlew assembleRelease", "adb logcat | grep acme"),
        snippets=("func application(_ app: UIApplication, open url: URL) -> Bool {\n  return router.handle(url)\n}",),
        links=(("https://appstoreconnect.apple.com/apps/{n}", "app store connect"),
               ("https://console.firebase.google.com/project/acme/crashlytics", "crashlytics")),
    ),
    Field(
        key="ml",
        things=("recommendation model", "training run", "feature store", "embedding index", "gpu node",
                "eval set", "model registry", "inference endpoint", "fine-tune job", "ranking model"),
        problems=("overfitting after epoch 3", "drifting since the last release", "running out of gpu memory",
                  "scoring worse on the eval set", "slow at p99", "returning NaN loss"),
        fixes=("lower the learning rate", "retrain on last month's data", "add dropout",
               "quantize the model to int8", "freeze the embedding layer", "shard the index"),
        commands=("python train.py --lr 3e-5 --epochs 4", "mlflow ui", "nvidia-smi"),
        snippets=("model.fit(X_train, y_train, validation_split=0.1, epochs=4)",
                  "loss = F.cross_entropy(logits, labels, label_smoothing=0.1)"),
        links=(("https://mlflow.acme.io/#/experiments/{n}", "experiment"),
               ("https://wandb.ai/acme/ranker/runs/{n}", "")),
    ),
    Field(
        key="design",
        things=("figma file", "mockup", "color palette", "icon set", "onboarding flow", "empty state",
                "design tokens", "typography scale", "prototype", "user research notes"),
        problems=("out of sync with the build", "failing contrast checks", "too busy on mobile",
                  "missing dark mode", "confusing in user testing"),
        fixes=("update the figma components", "use the 8px spacing grid", "swap to the new palette",
               "run another round of usability tests", "simplify the flow to 3 steps"),
        commands=("color: var(--brand-500)",),
        snippets=(":root {\n  --brand-500: #4f46e5;\n  --radius: 8px;\n}",),
        links=(("https://www.figma.com/file/acme{n}/Onboarding", "figma"),
               ("https://dribbble.com/shots/{n}", "")),
    ),
    Field(
        key="support",
        things=("customer ticket", "zendesk queue", "escalation", "help center article", "enterprise customer",
                "sla", "support macro", "bug report", "csat score", "onboarding call"),
        problems=("waiting 3 days for a reply", "escalated to the CEO", "breaching the sla",
                  "reporting the same bug again", "asking for a refund", "locked out of their account"),
        fixes=("reply with the workaround macro", "open a jira for engineering", "update the help article",
               "schedule a call with the customer", "tag it as p1 in zendesk"),
        commands=("ticket #48213",),
        snippets=("Hi {{customer}}, thanks for your patience! Our team is on it.",),
        links=(("https://acme.zendesk.com/agent/tickets/{n}", "ticket {n}"),
               ("https://help.acme.io/articles/{n}", "help article")),
    ),
    Field(
        key="management",
        things=("roadmap", "q3 okrs", "headcount plan", "all hands", "offsite", "quarterly review",
                "hiring pipeline", "budget", "board deck", "1:1 schedule", "team retro"),
        problems=("slipping by two weeks", "over budget", "missing an owner", "due on Thursday",
                  "blocked on legal", "not aligned with sales"),
        fixes=("move it to next sprint", "assign an owner today", "cut the scope", "set up a sync with sales",
               "put it on the all hands agenda"),
        commands=("Q3 planning",),
        snippets=("| goal | owner | status |\n| --- | --- | --- |\n| launch v2 | dan | on track |",),
        links=(("https://docs.google.com/document/d/1acme{n}/edit", "planning doc"),
               ("https://acme.atlassian.net/wiki/spaces/PLAN/{n}", "")),
    ),
)

FIELD_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}

#: Openers: a question or report about a field's topic. {t} thing, {p} problem, {f} fix.
OPENERS: tuple[str, ...] = (
    "anyone seen the {t} {p}?",
    "heads up: the {t} is {p} again",
    "the {t} started {p} after this morning's deploy, any idea?",
    "quick question about the {t} — it's {p}",
    "is someone looking at the {t}? it's {p}",
    "we have a customer saying the {t} is {p}",
    "can someone help me with the {t}? {p} since yesterday",
    "I think the {t} is {p}. should we {f}?",
    "FYI the {t} is {p} &amp; it's blocking the release",
    "who owns the {t}? it keeps {p}",
)

#: Replies that carry the field's words.
ANSWERS: tuple[str, ...] = (
    "I'd {f}",
    "looks like the {t} again. try to {f}",
    "yeah the {t} has been {p} since Tuesday",
    "I can take it, going to {f}",
    "did you {f}? that fixed it last time",
    "the {t} is fine on my side, maybe check the other one",
    "it's the {t}: we need to {f}",
    "ok I'll {f} and report back",
    "that's expected, the {t} was {p} during the migration",
    "we should {f} before the {t} gets worse",
    "p95 went from 200ms to &gt; 2s when the {t} started {p}",
    "the fix is to {f}, then watch the {t} for an hour",
)

#: Small talk: little or no signal about who should answer.
SMALL_TALK: tuple[str, ...] = (
    "thx!", "thanks!", "lol", "nice", "+1", "ok", "on it", "standup?", "brb", "👍", "ty", "sounds good",
    "haha", "yep", "makes sense", "coffee?", "will do", "np", "good morning!", "back in 5",
    "ugh mondays", "nice work everyone", "🙏", "gotcha", "sure", "lunch?", "same here", "cool cool",
    "kk", "done", "happy friday!", "anyone around?", "that's wild", "ok thanks", "ping me later",
)

#: Channel-free chit-chat openers for #random and the like.
SOCIAL: tuple[str, ...] = (
    "who's coming to the team lunch on friday?", "anyone watching the game tonight?",
    "the coffee machine on 3 is broken again", "happy birthday <@{u}>! :tada:",
    "pics from the offsite are in the shared drive", "book club: next one is Project Hail Mary",
    "we are ordering pizza, any requests?", "welcome to the team <@{u}> :wave:",
    "reminder: office closed on monday", "my cat just walked over the keyboard 🐈",
)

EMOJI: tuple[str, ...] = (
    ":tada:", ":+1:", ":eyes:", ":fire:", ":white_check_mark:", ":pray:", ":thinking_face:",
    ":rocket:", ":sweat_smile:", ":+1::skin-tone-2:", ":wave::skin-tone-4:", ":raised_hands:",
    ":100:", ":bug:", ":warning:",
)

REACTIONS: tuple[str, ...] = (
    "+1", "eyes", "white_check_mark", "heart", "joy", "tada", "pray", "+1::skin-tone-3", "raised_hands",
)

#: Odd but valid Unicode that must survive (or be cleaned by) the pipeline. No lone surrogates.
ODD_UNICODE: tuple[str, ...] = (
    "zero\u0000byte in the log line",
    "\u200fRTL mark before this",
    "file name is \u202etxt.exe",
    "pairing 👩\u200d💻👨\u200d💻 today",
    "family emoji 👨\u200d👩\u200d👧 and flag 🏳\ufe0f\u200d🌈",
    "cafe\u0301 and nai\u0308ve with combining marks",
    "部署完了しました、確認お願いします",
    "数据管道今天又失败了",
    "Zalgo t\u0336e\u0336x\u0336t",
)

PII: tuple[str, ...] = (
    "reach me at {email} if it breaks",
    "the customer's number is {phone}",
    "call me on {phone}, I'm away from the laptop",
    "forwarding the thread to {email}",
    "their billing contact is <mailto:{email}|{email}>",
)

PHONES: tuple[str, ...] = ("+1 415-555-0134", "(212) 555-0199", "+44 20 7946 0958", "+49 30 901820",
                           "555-867-5309", "+1 (646) 555-0142")
EMAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "customer-corp.com", "example.org", "outlook.com")

FILE_KINDS: tuple[tuple[str, str, str], ...] = (
    ("screenshot.png", "image/png", "png"),
    ("error.log", "text/plain", "text"),
    ("report.pdf", "application/pdf", "pdf"),
    ("mockup.fig", "application/octet-stream", "binary"),
    ("query.sql", "text/plain", "sql"),
)

DEPLOY_SERVICES: tuple[str, ...] = ("api", "web", "billing", "worker", "ios", "android", "ranker")
ALERTS: tuple[str, ...] = (
    "[FIRING] HighErrorRate api 5xx &gt; 2% for 5m", "[RESOLVED] HighErrorRate api",
    "[FIRING] NodeDiskPressure ip-10-0-3-17", "[FIRING] PodCrashLooping billing-worker",
    "[RESOLVED] PodCrashLooping billing-worker", "[FIRING] LatencyP99 ranker &gt; 800ms",
)

FIRST_NAMES: tuple[str, ...] = (
    "Ava", "Ben", "Chloe", "Diego", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lucia",
    "Mei", "Nils", "Omar", "Paula", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Yusuf", "Zoe",
)
LAST_NAMES: tuple[str, ...] = (
    "Andersen", "Brown", "Chen", "Dubois", "Eze", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
    "Kowalski", "Lopez", "Moreau", "Nguyen", "Olsen", "Patel", "Quist", "Reyes", "Silva", "Tanaka",
)
