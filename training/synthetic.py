"""Seeded synthetic incidents: labeled data to train on before a team has its own history.

Labels come from hidden causes (scenario, magnitude, service tier, customer impact, breadth, duration), and
the text shows them only indirectly: numbers, host and region names, phrasing, in nine message styles.
Severity is a noisy score over all of them, so no keyword decides it and a model must combine evidence, as it
must on real alerts. Label noise is drawn from its own random stream after the clean labels, so a seed gives
the same text at every noise level and the noisy rows at a lower level are a subset of those at a higher one.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from engine.services import SERVICES
from engine.taxonomy import ACTIONS, CATEGORIES, SEVERITIES
from training.dataset import LabeledIncident

T = TypeVar("T")

STYLES: tuple[str, ...] = (
    "alertmanager",
    "grafana",
    "datadog",
    "sentry",
    "cloudwatch",
    "pagerduty",
    "human",
    "statuspage",
    "postmortem",
    "rule",
    "oneliner",
)


@dataclass(frozen=True, slots=True)
class _Scenario:
    """One way a category shows up: its alert, metric, wording, likely root causes and usual fixes.

    ``lo``/``hi`` are the metric at magnitude 0 and 1 (``ready`` counts ready replicas, ``cert`` days left).
    Templates use the placeholders of ``_Fields``.
    """

    key: str
    category: str
    alert: str
    headline: str
    metric: str
    unit: str
    lo: float
    hi: float
    symptoms: tuple[str, ...]
    human: tuple[str, ...]
    exceptions: tuple[str, ...]
    causes: tuple[str, ...]
    actions: tuple[str, ...]
    kinds: tuple[str, ...]
    cloudwatch: tuple[str, str]


_API = ("api", "web", "edge")
_DATA = ("sql",)
_INFRA = ("platform", "datastore", "queue", "batch")
_WORK = ("worker", "batch", "queue")

# One block per scenario reads better than one argument per line.
# fmt: off
_SCENARIOS: tuple[_Scenario, ...] = (
    # --- database
    _Scenario(
        "replication_lag", "database", "PostgresReplicationLag", "replication lag on {db}",
        "pg_replication_lag_seconds", "s", 4, 2400,
        ("replica {db}-replica-2 is {v} behind the primary",
         "replication lag on {db} at {v}, reads are stale"),
        ("{db} replicas are {v} behind, reads are stale", "seeing stale reads from {svc}, replica lag {v}"),
        ("StaleReadError: replica {db}-replica-2 lag {v} exceeds max_staleness",),
        ("a bulk backfill saturated WAL shipping to the replicas",
         "a long analytics query on the replica blocked WAL replay"),
        ("throttle_traffic", "monitor"), _DATA, ("AWS/RDS", "ReplicaLag"),
    ),
    _Scenario(
        "primary_down", "database", "PostgresPrimaryDown", "primary database unreachable for {svc}",
        "pg_up_failed_queries_ratio", "rate", 1, 100,
        ("{db} primary not accepting connections, {v} of queries failing",
         "mysql primary {db} refusing connections ({v} of queries erroring)"),
        ("{db} primary is down?? {svc} can't connect", "{svc} can't reach its database, {v} of queries fail"),
        ("OperationalError: could not connect to server: Connection refused (host {db}-primary, port 5432)",
         "CommunicationsException: Communications link failure to {db}-primary:3306"),
        ("the postgres primary hit a checkpoint stall and stopped accepting connections",
         "the mysql primary ran out of max_connections and wedged"),
        ("failover", "restart_service"), _DATA, ("AWS/RDS", "DatabaseConnections"),
    ),
    _Scenario(
        "deadlocks", "database", "PostgresDeadlocksHigh", "deadlocks and slow queries on {db}",
        "pg_stat_database_deadlocks_rate", "count", 3, 2500,
        ("{v} deadlocks per minute on {db}, p99 query time {p99}",
         "slow queries piling up on {db}: {v} deadlocks in 5 minutes"),
        ("lots of deadlocks on {db}, queries taking {p99}", "{db} slow query log exploding, {v} deadlocks"),
        ("DeadlockDetected: deadlock detected while updating table orders",
         "QueryCanceled: canceling statement due to statement timeout"),
        ("two code paths locked the orders and payments tables in opposite order",
         "a missing index turned the hot lookup into a sequential scan"),
        ("restart_service", "deploy_hotfix"), _DATA, ("AWS/RDS", "ReadLatency"),
    ),
    _Scenario(
        "db_pool", "database", "PgBouncerPoolExhausted", "connection pool exhausted on {db}",
        "pgbouncer_pool_used_pct", "pct", 72, 100,
        ("connection pool usage on {db} at {v} with {waiting} clients waiting",
         "{db} pgbouncer pool at {v}, new connections queueing"),
        ("{svc} getting 'too many connections' from {db}", "db pool maxed out on {db} ({v})"),
        ("TimeoutError: QueuePool limit of size 20 overflow 10 reached, connection timed out",
         "FATAL: remaining connection slots are reserved for non-replication superuser connections"),
        ("a slow query held connections open until the pool ran dry",),
        ("restart_service", "throttle_traffic"), _DATA, ("AWS/RDS", "DatabaseConnections"),
    ),
    _Scenario(
        "corruption", "database", "DataIntegrityCheckFailed", "data corruption detected in {db}",
        "integrity_check_failed_rows", "count", 10, 400000,
        ("checksum mismatch on {v} rows in {db}", "integrity check found {v} corrupted rows in {db}"),
        ("{db} has corrupted rows?? integrity job flagged {v}", "bad data in {db}, {v} rows mangled"),
        ("IntegrityError: invalid page in block 48213 of relation base/16384/2619",),
        ("a failed migration left rows half written", "a storage bug corrupted index pages on the primary"),
        ("restore_from_backup", "failover"), _DATA, ("AWS/RDS", "FailedSQLServerAgentJobsCount"),
    ),
    _Scenario(
        "cluster_state", "database", "ElasticsearchClusterRed", "{db} cluster lost quorum",
        "cluster_unassigned_primary_shards", "count", 1, 400,
        ("cluster {db} is RED: {v} primary shards unassigned",
         "{db} has no elected leader, {v} shards unassigned"),
        ("{db} cluster is red, {v} shards unassigned", "{db} lost quorum, no leader, writes failing"),
        ("ClusterBlockException: blocked by: [SERVICE_UNAVAILABLE/2/no master]", "etcdserver: no leader"),
        ("two of three master nodes were rescheduled at once and the cluster lost quorum",
         "a data node ran out of disk and its shards could not be allocated"),
        ("restart_service", "failover"), ("datastore", "platform"), ("AWS/ES", "ClusterStatus.red"),
    ),
    _Scenario(
        "cache_down", "database", "RedisDown", "redis primary down for {svc}",
        "redis_command_errors_ratio", "rate", 1, 100,
        ("redis primary for {svc} not answering, {v} of commands failing",
         "redis master down and no replica promoted, {v} of cache calls erroring"),
        ("redis is down, {svc} timing out", "{svc} cant reach redis, {v} errors"),
        ("ConnectionError: Error 111 connecting to redis-primary:6379. Connection refused.",),
        ("the redis primary was OOM-killed and sentinel never promoted a replica",),
        ("failover", "restart_service"), _API + _WORK, ("AWS/ElastiCache", "CurrConnections"),
    ),
    # --- network
    _Scenario(
        "dns", "network", "DNSResolutionFailures", "DNS resolution failures for {svc}",
        "coredns_servfail_ratio", "rate", 0.5, 60,
        ("{v} of DNS lookups for {svc}.internal return SERVFAIL",
         "name resolution failing for {svc}: {v} NXDOMAIN/SERVFAIL"),
        ("getting name resolution errors talking to {svc}", "dns is flaky for {svc}, {v} of lookups fail"),
        ("socket.gaierror: [Errno -3] Temporary failure in name resolution",
         "UnknownHostException: {svc}.internal: Name or service not known"),
        ("the CoreDNS pods were evicted and the remaining resolvers were overloaded",
         "a resolver pointed at a decommissioned DNS server"),
        ("restart_service", "failover"), ("platform", "edge", "api"), ("AWS/Route53", "DNSQueries"),
    ),
    _Scenario(
        "packet_loss", "network", "NetworkPacketLoss", "packet loss between {az} and {az2}",
        "node_network_drop_ratio", "rate", 0.2, 40,
        ("{v} packet loss between {az} and {az2}, TCP retransmits climbing",
         "cross-AZ packet loss at {v} for {svc} traffic"),
        ("seeing packet loss from {az} to {az2}", "network between AZs dropping {v} of packets"),
        ("ConnectionResetError: [Errno 104] Connection reset by peer",),
        ("a flapping top-of-rack switch uplink", "a BGP route leak at the transit provider"),
        ("failover", "escalate_vendor"), ("edge", "platform", "api"), ("AWS/EC2", "NetworkPacketsIn"),
    ),
    _Scenario(
        "lb_502", "network", "LoadBalancer5xx", "load balancer returning 502s for {svc}",
        "nginx_ingress_5xx_ratio", "rate", 0.5, 50,
        ("ingress returns 502 Bad Gateway on {v} of requests to {svc}", "ALB 502s at {v} for {svc}"),
        ("getting 502s from {svc}", "{svc} lb throwing bad gateway, {v} of requests"),
        ("BadGateway: upstream {svc} returned 502",),
        ("health checks marked every target unhealthy after a security group change",
         "an idle timeout mismatch between the ALB and nginx"),
        ("restart_service", "revert_config"), _API, ("AWS/ApplicationELB", "HTTPCode_ELB_502_Count"),
    ),
    _Scenario(
        "tls_handshake", "network", "TLSHandshakeErrors", "TLS handshake failures to {svc}",
        "envoy_ssl_handshake_errors", "count", 20, 90000,
        ("{v} TLS handshake errors per minute on the {svc} edge",
         "clients failing TLS handshakes to {svc} ({v}/min)"),
        ("ssl handshake errors hitting {svc}", "tls errors connecting to {svc}, like {v} a minute"),
        ("SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number",),
        ("a proxy upgrade dropped cipher suites that older clients still use",),
        ("restart_service", "revert_config"), ("edge", "api"),
        ("AWS/ApplicationELB", "ClientTLSNegotiationErrorCount"),
    ),
    _Scenario(
        "net_latency", "network", "HighNetworkLatency", "network latency spike in {region}",
        "probe_duration_seconds", "ms", 80, 8000,
        ("round-trip latency to {svc} at {v} from {region} probes", "blackbox probes to {svc} taking {v}"),
        ("everything in {region} feels slow, pings at {v}", "network latency to {svc} is awful ({v})"),
        ("ReadTimeout: HTTPSConnectionPool(host='{svc}.internal', port=443): Read timed out",),
        ("a congested peering link between regions", "a misbehaving NAT gateway"),
        ("failover", "monitor"), ("edge", "platform"), ("AWS/EC2", "NetworkOut"),
    ),
    # --- deployment (always with a recent release in the text)
    _Scenario(
        "release_errors", "deployment", "HighErrorRate", "5xx spike on {svc} after {ver}",
        "http_requests_errors_ratio", "rate", 0.5, 45,
        ("error rate on {svc} jumped to {v} right after {ver} went out",
         "{svc} {ver}: 5xx at {v} since rollout"),
        ("{svc} throwing errors since {ver} went out, {v}", "500s on {svc} after the release"),
        ("ImportError: cannot import name 'PriceCalculator' from 'pricing.v2'",
         "NoSuchMethodError: OrderMapper.toDto(Lorg/acme/Order;)"),
        ("release {ver} shipped a migration that dropped a column the old pods still read",
         "the {ver} build was missing a runtime dependency"),
        ("rollback_deploy", "deploy_hotfix"), _API, ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
    ),
    _Scenario(
        "canary", "deployment", "CanaryAnalysisFailed", "canary for {ver} failing analysis",
        "canary_error_ratio", "rate", 0.5, 30,
        ("canary {ver} at 10% of traffic shows {v} errors vs 0.2% baseline",
         "argo rollouts analysis failed for {svc} {ver}: error ratio {v}"),
        ("canary for {svc} {ver} looks bad, {v} errors", "{ver} canary failing checks"),
        ("ValueError: unsupported currency code ''",),
        ("the {ver} canary read a config key renamed in the same release",),
        ("rollback_deploy",), _API, ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
    ),
    _Scenario(
        "rollout_crashloop", "deployment", "KubePodCrashLooping", "pods crash looping after {ver} rollout",
        "kube_deployment_status_replicas_ready", "ready", 0, 1,
        ("deployment {svc} has {v} replicas ready after rolling out {ver}, pods in CrashLoopBackOff",
         "{v} pods ready for {svc} since {ver}, the rest crash looping"),
        ("{svc} pods crashlooping after the deploy, {v} ready", "new {svc} pods wont start"),
        ("panic: runtime error: invalid memory address or nil pointer dereference",),
        ("{ver} required an env var that was never added to production",),
        ("rollback_deploy", "restart_service"), _API + _WORK, ("ECS/ContainerInsights", "RunningTaskCount"),
    ),
    _Scenario(
        "release_latency", "deployment", "HighLatencyP99", "p99 latency regression after {ver}",
        "http_request_duration_seconds_p99", "ms", 250, 9000,
        ("p99 latency on {svc} up to {v} since {ver}", "{svc} {ver} made requests slow: p99 {v}"),
        ("{svc} got slow after the release, p99 {v}", "latency on {svc} way up since {ver}"),
        ("TimeoutError: upstream request timeout after 5000ms",),
        ("{ver} added an N+1 query to the hot path",),
        ("rollback_deploy", "scale_up"), _API, ("AWS/ApplicationELB", "TargetResponseTime"),
    ),
    # --- configuration (always with a config change in the text)
    _Scenario(
        "flag_flip", "configuration", "ErrorBudgetBurn", "error budget burn on {svc}",
        "slo_error_budget_burn_ratio", "rate", 0.5, 40,
        ("{svc} errors at {v} since the flag change", "error rate {v} on {svc}, burning budget fast"),
        ("{svc} erroring ({v}) since someone flipped a flag", "{svc} broken after flag change"),
        ("KeyError: 'pricing_tier'",),
        ("the `{flag}` flag routed traffic to an unfinished code path",),
        ("revert_config",), _API, ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
    ),
    _Scenario(
        "bad_push", "configuration", "ConfigReloadFailed", "bad config push to {svc}",
        "config_reload_failure_ratio", "rate", 1, 80,
        ("{key} set to an invalid value, {v} of requests failing",
         "{svc} config reload broke {v} of requests"),
        ("did someone change {svc} config? {v} of requests failing",
         "{svc} config looks wrong, {key} is bogus"),
        ("ConfigError: {key} must be a positive integer, got 0",),
        ("a config push set {key} to 0",),
        ("revert_config", "restart_service"), _API + _WORK, ("AWS/AppConfig", "DeploymentFailures"),
    ),
    _Scenario(
        "rate_limits", "configuration", "RateLimitedRequests", "legitimate traffic rate limited on {svc}",
        "ratelimit_rejected_ratio", "rate", 1, 70,
        ("{v} of requests to {svc} rejected with 429 after a limits change",
         "rate limiter now rejecting {v} of {svc} calls"),
        ("everyone getting 429s from {svc}", "{svc} rate limiting way too hard, {v} rejected"),
        ("TooManyRequests: rate limit exceeded for tenant default",),
        ("a limits file set the per-tenant quota a thousand times too low",),
        ("revert_config",), ("edge", "api"), ("AWS/WAFV2", "BlockedRequests"),
    ),
    _Scenario(
        "cache_ttl", "configuration", "CacheHitRateLow", "cache hit rate collapsed on {svc}",
        "cache_miss_pct", "pct", 20, 99,
        ("cache miss ratio on {svc} at {v} after the TTL changed",
         "{svc} cache misses at {v}, backend hammered"),
        ("{svc} cache basically not working, misses at {v}", "cache hit rate for {svc} tanked"),
        ("CacheMissStorm: {svc} fell back to origin for every request",),
        ("a config push set the cache TTL from 3600 to 0",),
        ("revert_config", "clear_cache"), (*_API, "datastore"), ("AWS/ElastiCache", "CacheMisses"),
    ),
    _Scenario(
        "infra_change", "configuration", "TargetsUnhealthy", "targets unhealthy for {svc}",
        "unhealthy_host_count", "count", 1, 200,
        ("{v} targets unhealthy for {svc} after the infra change",
         "{svc}: {v} targets failing health checks"),
        ("{svc} targets all unhealthy?", "{v} {svc} hosts failing health checks"),
        ("ConnectTimeoutError: connect timeout to {svc}.internal:8443",),
        ("a terraform change removed the health check port from the security group",),
        ("revert_config", "failover"), ("edge", "api", "platform"),
        ("AWS/ApplicationELB", "UnHealthyHostCount"),
    ),
    _Scenario(
        "network_config", "configuration", "BGPPrefixesWithdrawn",
        "routes withdrawn in {region} after a network change",
        "bgp_prefixes_withdrawn", "count", 2, 4000,
        ("{v} prefixes withdrawn in {region} after the router config change",
         "traffic to {svc} blackholed in {region} since the network config push"),
        ("{svc} unreachable from {region} since the network change",
         "did someone push router config? {svc} is down"),
        ("ConnectTimeoutError: no route to host {svc}.internal (after the {region} edge config change)",),
        ("a router config push with a typo withdrew the BGP prefixes for {region}",
         "a DNS configuration change pointed {svc} at a decommissioned address",
         "a misconfigured load balancer rule sent all {region} traffic to one datacenter"),
        ("revert_config", "failover"), ("edge", "platform", "api"), ("AWS/DirectConnect", "ConnectionState"),
    ),
    # --- resource exhaustion (every primary metric is a percentage)
    _Scenario(
        "oom", "resource_exhaustion", "KubeContainerOOMKilled", "memory exhaustion on {svc}",
        "container_memory_working_set_pct", "pct", 78, 99.8,
        ("memory at {v} of limit on {svc}, {restarts} OOMKilled restarts in 30m",
         "{svc} pods using {v} of memory limit, OOMKilled {restarts} times"),
        ("{svc} keeps getting OOMKilled, mem at {v}", "{svc} memory through the roof ({v})"),
        ("OutOfMemoryError: Java heap space", "MemoryError: Unable to allocate 512. MiB for an array"),
        ("an unbounded in-process cache grew until pods hit their memory limit",),
        ("restart_service", "scale_up"), _API + _WORK, ("ECS/ContainerInsights", "MemoryUtilized"),
    ),
    _Scenario(
        "disk_full", "resource_exhaustion", "NodeFilesystemAlmostFull", "disk almost full on {host}",
        "node_filesystem_used_pct", "pct", 78, 99.9,
        ("disk usage at {v} on /var/lib/docker ({host})", "/data at {v} on {host}, {svc} writes at risk"),
        ("disk on {host} is at {v}", "{svc} box almost out of disk, {v}"),
        ("OSError: [Errno 28] No space left on device",),
        ("debug logging filled the data volume", "old build artifacts were never cleaned up"),
        ("clear_cache", "scale_up"), _INFRA + _WORK, ("CWAgent", "disk_used_percent"),
    ),
    _Scenario(
        "cpu_throttle", "resource_exhaustion", "CPUThrottlingHigh", "CPU saturation on {svc}",
        "container_cpu_usage_pct", "pct", 70, 99.5,
        ("CPU at {v} on {svc}, {throttled}% of periods throttled",
         "{svc} pegged at {v} CPU, requests queueing"),
        ("{svc} cpu pegged at {v}", "{svc} is cpu throttled"),
        ("TimeoutError: worker did not respond within 30s",),
        ("CPU limits set too low for the current load",),
        ("scale_up",), _API + _WORK, ("AWS/EC2", "CPUUtilization"),
    ),
    _Scenario(
        "surge", "resource_exhaustion", "TrafficSurge", "traffic surge on {svc}",
        "fleet_cpu_usage_pct", "pct", 75, 99.5,
        ("fleet CPU {v} with requests at {mult}x normal, consumer lag {lag} messages",
         "{svc} at {v} CPU, traffic {mult}x baseline after a marketing push"),
        ("massive traffic spike on {svc}, {mult}x normal", "{svc} getting hammered, cpu {v}"),
        ("RejectedExecutionException: thread pool queue full",),
        ("a marketing campaign sent several times the usual traffic",),
        ("scale_up", "throttle_traffic"), _API, ("AWS/ApplicationELB", "RequestCount"),
    ),
    _Scenario(
        "queue_backlog", "resource_exhaustion", "QueueBacklogHigh", "message backlog growing on {topic}",
        "queue_depth_of_max_length_pct", "pct", 60, 100,
        ("queue {topic} at {v} of its max length, {svc} consumers falling behind",
         "{topic} backlog at {v} of capacity, oldest message {mins} minutes old"),
        ("{topic} queue backing up, {v} full", "{svc} consumers cant keep up, queue {v} full"),
        ("QueueFullError: queue {topic} reached max-length, publish rejected",),
        ("consumers were scaled down while producers kept publishing at the peak rate",),
        ("scale_up", "throttle_traffic"), _WORK, ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ),
    _Scenario(
        "autoscaler_max", "resource_exhaustion", "KubeHpaMaxedOut", "{svc} autoscaler at its maximum",
        "pod_cpu_usage_at_max_replicas_pct", "pct", 70, 99.5,
        ("HPA {svc} has run at max replicas for {mins} minutes, pod CPU {v}",
         "{svc} autoscaler pinned at its maximum replica count, average CPU {v}"),
        ("{svc} hpa maxed out, cpu still {v}", "{svc} cant scale any further, at max replicas"),
        ("ServiceUnavailable: no healthy upstream ({svc} pods saturated)",),
        ("the autoscaler's maximum was sized for last year's traffic",),
        ("scale_up",), _API + _WORK, ("AWS/AutoScaling", "GroupInServiceInstances"),
    ),
    _Scenario(
        "quota", "resource_exhaustion", "ServiceQuotaNearLimit", "quota nearly exhausted for {svc}",
        "aws_service_quota_used_pct", "pct", 80, 100,
        ("{quota} at {v} of the account limit", "{svc} using {v} of its {quota} quota, new launches fail"),
        ("we are at {v} of the {quota} quota", "cant launch anything for {svc}, quota at {v}"),
        ("LimitExceededException: account limit for {quota} exceeded",),
        ("growth hit the provider's default quota for {quota}",),
        ("escalate_vendor", "throttle_traffic"), _INFRA + _WORK, ("AWS/Usage", "ResourceCount"),
    ),
    _Scenario(
        "client_pool", "resource_exhaustion", "ConnectionPoolSaturated", "client pool saturated in {svc}",
        "http_client_pool_used_pct", "pct", 70, 100,
        ("outbound connection pool at {v} in {svc}, {waiting} requests waiting",
         "{svc} client pool usage {v}, calls to the database queueing"),
        ("{svc} connection pool full ({v})", "{svc} running out of connections"),
        ("PoolTimeoutError: timed out waiting for a connection from the pool",),
        ("a retry storm held every pooled connection",),
        ("scale_up", "restart_service"), _API, ("AWS/ApplicationELB", "ActiveConnectionCount"),
    ),
    # --- software bugs
    _Scenario(
        "exceptions", "software_bug", "HighErrorRate", "exceptions in {svc}",
        "app_exceptions_ratio", "rate", 0.3, 40,
        ("unhandled exceptions on {v} of {svc} requests", "{svc} raising errors on {v} of calls"),
        ("{svc} is throwing 500s", "{svc} erroring on {v} of requests, stack trace in sentry"),
        ("TypeError: Cannot read properties of undefined (reading 'id')",
         "NullPointerException in OrderService.place",
         "AttributeError: 'NoneType' object has no attribute 'customer_id'"),
        ("a null customer record reached code that assumed it was set",
         "an edge case in the pricing code divided by zero"),
        ("deploy_hotfix", "restart_service"), _API + _WORK, ("AWS/Lambda", "Errors"),
    ),
    _Scenario(
        "panic", "software_bug", "KubePodCrashLooping", "{svc} crash looping",
        "kube_deployment_status_replicas_ready", "ready", 0, 1,
        ("{svc} has {v} replicas ready, containers exiting with code 2",
         "{v} {svc} pods ready, others in CrashLoopBackOff"),
        ("{svc} pods keep crashing, {v} ready", "{svc} panicking in a loop"),
        ("panic: runtime error: index out of range [3] with length 3",
         "SIGSEGV: segmentation violation in libvips"),
        ("a malformed message made the worker panic on every start",),
        ("restart_service", "deploy_hotfix"), _API + _WORK, ("ECS/ContainerInsights", "RunningTaskCount"),
    ),
    _Scenario(
        "wrong_results", "software_bug", "InvoiceTotalsMismatch", "wrong totals computed by {svc}",
        "reconciliation_mismatches", "count", 5, 50000,
        ("reconciliation found {v} records with wrong totals from {svc}",
         "{svc} wrote {v} incorrect amounts"),
        ("{svc} is computing the wrong totals, {v} records so far",
         "customers report wrong amounts from {svc}"),
        ("AssertionError: invoice total mismatch (expected 120.00, got 12.00)",),
        ("a rounding regression in the tax calculation",),
        ("deploy_hotfix", "restore_from_backup"), ("api", "batch"),
        ("Custom/Billing", "ReconciliationErrors"),
    ),
    _Scenario(
        "hang", "software_bug", "HighLatencyP99", "requests hanging in {svc}",
        "http_request_duration_seconds_p99", "ms", 300, 30000,
        ("p99 latency on {svc} at {v}, threads stuck", "{svc} requests hanging, p99 {v}"),
        ("{svc} requests just hang", "{svc} super slow ({v}), looks like a deadlock in the app"),
        ("TimeoutError: request exceeded 30s", "goroutine leak: 48213 goroutines blocked on chan receive"),
        ("a retry loop without backoff spun on a poison message", "a goroutine leak blocked the worker pool"),
        ("restart_service", "deploy_hotfix"), _API + _WORK, ("AWS/ApplicationELB", "TargetResponseTime"),
    ),
    _Scenario(
        "poison", "software_bug", "KafkaConsumerLagHigh", "consumer stuck on {topic}",
        "kafka_consumergroup_lag", "count", 1000, 5000000,
        ("consumer group {svc} is {v} messages behind on {topic}", "{svc} stuck on {topic}, lag {v}"),
        ("{svc} consumer stuck, lag {v} on {topic}", "{topic} lag keeps growing"),
        ("JSONDecodeError: Expecting value: line 1 column 1 (char 0)",),
        ("a malformed event made the consumer crash and retry forever",),
        ("deploy_hotfix", "restart_service"), _WORK, ("AWS/Kafka", "SumOffsetLag"),
    ),
    # --- hardware
    _Scenario(
        "component_failure", "hardware", "IPMISensorCritical", "hardware fault on {host}",
        "node_hwmon_temp_celsius", "temp", 70, 105,
        ("chassis fan 2 failed on {host}, CPU at {v} and throttling",
         "power supply 1 failed on {host}, running on the redundant PSU, inlet {v}"),
        ("{host} fan died, cpu throttling at {v}", "psu failed on {host}"),
        ("MachineCheckException: CPU 3 thermal event on {host}",),
        ("a failed chassis fan let the CPUs overheat and throttle", "a power supply unit burned out"),
        ("replace_hardware", "monitor"), _INFRA, ("AWS/EC2", "StatusCheckFailed_System"),
    ),
    _Scenario(
        "disk_failure", "hardware", "SMARTDiskFailing", "disk failing on {host}",
        "smart_reallocated_sectors", "count", 8, 5000,
        ("SMART reallocated sector count {v} on /dev/nvme1n1 ({host})", "{host}: {v} I/O errors on /dev/sdb"),
        ("disk on {host} dying, {v} bad sectors", "{host} throwing io errors"),
        ("OSError: [Errno 5] Input/output error",),
        ("a failing NVMe drive", "a dead disk in the RAID array"),
        ("replace_hardware", "failover"), _INFRA, ("AWS/EBS", "VolumeQueueLength"),
    ),
    _Scenario(
        "host_down", "hardware", "NodeNotReady", "hosts unreachable for {svc}",
        "kube_node_status_ready", "ready", 0, 1,
        ("{v} nodes ready in the {svc} pool, the rest not responding", "{host} down, {v} {svc} nodes ready"),
        ("{host} just died", "lost some boxes for {svc}, {v} ready"),
        ("ConnectionRefusedError: [Errno 111] Connection refused",),
        ("a failed motherboard on the host", "a hypervisor fault took the instance down"),
        ("failover", "replace_hardware"), _INFRA + _WORK, ("AWS/EC2", "StatusCheckFailed_System"),
    ),
    _Scenario(
        "cooling", "hardware", "RackTemperatureHigh", "cooling failure in rack {rack}",
        "rack_inlet_temperature_celsius", "temp", 28, 52,
        ("inlet temperature {v} in rack {rack}, hosts throttling", "rack {rack} at {v}, PDU alarms firing"),
        ("rack {rack} overheating ({v})", "dc says cooling failed near rack {rack}"),
        ("OSError: [Errno 5] Input/output error",),
        ("a CRAC unit failed in the data hall", "a tripped PDU breaker cut power to the rack"),
        ("failover", "escalate_vendor"), _INFRA, ("AWS/EC2", "StatusCheckFailed_System"),
    ),
    _Scenario(
        "power_loss", "hardware", "DatacenterPowerLoss", "power loss in {az}",
        "hosts_without_power", "count", 2, 3000,
        ("{v} hosts lost power in {az}, racks on UPS battery",
         "utility power failure in {az}: {v} hosts down"),
        ("power went out in {az}?? {v} hosts gone", "{svc} hosts in {az} lost power"),
        ("ConnectionRefusedError: [Errno 111] Connection refused",),
        ("a utility power outage during which the backup generators failed to start",
         "a lightning strike tripped the power feed to the data hall",
         "a failed UPS transfer switch cut power to a row of racks"),
        ("failover", "escalate_vendor"), _INFRA + _WORK, ("AWS/EC2", "StatusCheckFailed_System"),
    ),
    _Scenario(
        "ecc", "hardware", "EDACCorrectableErrors", "ECC memory errors on {host}",
        "node_edac_correctable_errors", "count", 10, 20000,
        ("{v} correctable ECC errors on {host} in the last hour", "EDAC reports {v} memory errors on {host}"),
        ("{host} logging ecc errors ({v})", "memory errors on {host}"),
        ("SIGBUS: bus error",),
        ("a failing DIMM",),
        ("replace_hardware", "failover"), _INFRA, ("AWS/EC2", "StatusCheckFailed_Instance"),
    ),
    # --- third party
    _Scenario(
        "stripe", "third_party", "PaymentProviderErrors", "Stripe API errors",
        "stripe_request_error_ratio", "rate", 0.5, 60,
        ("{v} of calls to api.stripe.com failing with 503 or timeouts", "Stripe charges failing ({v})"),
        ("stripe is returning errors, {v} of charges fail", "stripe down?"),
        ("stripe.error.APIConnectionError: Could not connect to Stripe",),
        ("an incident at Stripe",),
        ("escalate_vendor", "failover"), ("money",), ("Custom/Payments", "ProviderErrors"),
    ),
    _Scenario(
        "messaging", "third_party", "SMSDeliveryFailures", "{msg_vendor} delivery failures",
        "notification_provider_error_ratio", "rate", 0.5, 70,
        ("{v} of messages to {msg_vendor} failing", "{msg_vendor} API rejecting {v} of sends"),
        ("{msg_vendor} not delivering, {v} failing", "users not getting codes, {msg_vendor} issue?"),
        ("TwilioRestException: HTTP 503 error: Service Unavailable",),
        ("a degradation at {msg_vendor}",),
        ("escalate_vendor", "failover"), ("worker", "api"), ("Custom/Notifications", "ProviderErrors"),
    ),
    _Scenario(
        "cloud_provider", "third_party", "S3ErrorRateHigh", "S3 errors in {region}",
        "aws_s3_5xx_ratio", "rate", 0.5, 60,
        ("{v} of S3 requests in {region} returning 503 SlowDown",
         "AWS S3 in {region} erroring on {v} of calls"),
        ("s3 in {region} is broken for us, {v} errors", "aws having issues in {region}?"),
        ("botocore.exceptions.ClientError: An error occurred (503) when calling the PutObject operation",),
        ("an AWS S3 outage in {region}",),
        ("failover", "escalate_vendor"), _INFRA + _WORK, ("AWS/S3", "5xxErrors"),
    ),
    _Scenario(
        "upstream", "third_party", "UpstreamLatencyHigh", "{vendor} API slow",
        "upstream_request_duration_p99", "ms", 300, 20000,
        ("{vendor} API p99 at {v} from {svc}", "calls from {svc} to {vendor} taking {v}"),
        ("{vendor} super slow for us ({v})", "is {vendor} down? {svc} timing out on it"),
        ("ReadTimeout: upstream {vendor} did not respond in 10s",),
        ("an upstream outage at {vendor}",),
        ("escalate_vendor", "throttle_traffic"), _API + _WORK, ("Custom/Upstream", "Latency"),
    ),
    # --- security
    _Scenario(
        "brute_force", "security", "LoginFailuresSpike", "brute force against {svc}",
        "auth_failed_logins", "count", 200, 500000,
        ("{v} failed logins in 10 minutes from {ips} IPs", "credential stuffing on {svc}: {v} failed logins"),
        ("someone is hammering {svc} login, {v} failures", "looks like credential stuffing on {svc}"),
        ("AuthenticationFailed: too many failed attempts for user",),
        ("a credential stuffing botnet",),
        ("throttle_traffic", "rotate_credentials"), ("api", "web", "edge"), ("AWS/WAFV2", "BlockedRequests"),
    ),
    _Scenario(
        "leaked_creds", "security", "SecretDetected", "credentials leaked for {svc}",
        "unknown_principal_api_calls", "count", 1, 5000,
        ("an access key for {svc} was pushed to a public repo; {v} API calls from unknown IPs since",
         "GuardDuty: {svc} credentials used from an unknown IP ({v} calls)"),
        ("we leaked a {svc} key on github, {v} calls from strangers", "{svc} api key is public"),
        ("UnauthorizedAccess: IAMUser/InstanceCredentialExfiltration",),
        ("an access key committed to a public repository",),
        ("rotate_credentials",), _API + _DATA, ("AWS/CloudTrail", "UnauthorizedAPICalls"),
    ),
    _Scenario(
        "cert_expiry", "security", "CertificateExpiry", "TLS certificate for {svc}",
        "ssl_cert_not_after_days", "cert", 0, 1,
        ("certificate for {svc}.example.com {v}", "TLS cert on the {svc} endpoint {v}"),
        ("cert for {svc} {v}", "{svc} cert expiring, browsers complaining"),
        ("SSLCertVerificationError: certificate has expired",),
        ("an expired certificate that auto-renewal never picked up",),
        ("rotate_credentials",), ("edge", "api", "web"), ("AWS/CertificateManager", "DaysToExpiry"),
    ),
    _Scenario(
        "waf", "security", "WAFBlockedRequestsSpike", "WAF blocking spike on {svc}",
        "waf_blocked_requests", "count", 500, 2000000,
        ("WAF blocked {v} requests in 5 minutes from {ips} IPs (SQLi signatures)",
         "{v} malicious requests blocked on {svc}"),
        ("waf going crazy on {svc}, {v} blocked", "getting attacked? {svc} waf blocks way up"),
        ("SuspiciousOperation: request matched SQL injection rule",),
        ("a scanning botnet probing for SQL injection",),
        ("throttle_traffic", "monitor"), ("edge", "api"), ("AWS/WAFV2", "BlockedRequests"),
    ),
    _Scenario(
        "auth_failures", "security", "AuthTokenValidationFailures", "token validation failures on {svc}",
        "jwt_validation_failure_ratio", "rate", 0.5, 80,
        ("{v} of tokens failing signature validation on {svc}",
         "{svc} rejecting {v} of sessions: bad signature"),
        ("users getting logged out of {svc}, {v} token failures", "{svc} says every token is invalid"),
        ("InvalidSignatureError: Signature verification failed",),
        ("a signing key was rotated on one side only",),
        ("rotate_credentials", "restart_service"), ("api", "web", "edge"), ("Custom/Auth", "TokenFailures"),
    ),
)
# fmt: on

# Severity = noisy score cut at fixed thresholds, so a row's label never depends on the rest of the batch.
# The thresholds are the 25/55/83% quantiles of the score (low 25%, medium 30%, high 28%, critical 17%).
_TIER_SCORE = {1: 0.55, 2: 0.1, 3: -0.3}
# How bad a kind of failure is on its own, at equal magnitude. Rule authors grade by kind first: a primary
# that is down, a service answering 5xx, lost power or leaked credentials page; a lagging replica, a slow
# upstream, throttled CPU or a certificate expiring in weeks warn. People's one-line reports seldom carry a
# magnitude, so without this the kind would say nothing and every terse outage report would read "medium".
_KIND_SCORE: dict[str, float] = {
    # hard failures: something is down, refusing, wrong or exposed
    "primary_down": 0.8, "corruption": 0.8, "power_loss": 0.8, "leaked_creds": 0.8, "network_config": 0.6,
    "lb_502": 0.5, "infra_change": 0.5, "stripe": 0.5, "wrong_results": 0.5, "release_errors": 0.4,
    "rollout_crashloop": 0.4, "flag_flip": 0.4, "bad_push": 0.4, "exceptions": 0.4, "panic": 0.4, "dns": 0.4,
    "cluster_state": 0.5, "cache_down": 0.5,
    "host_down": 0.3, "cloud_provider": 0.3, "auth_failures": 0.3, "db_pool": 0.3, "hang": 0.3,
    # early warnings and slowness: the service still answers
    "ecc": -0.8, "canary": -0.6, "cpu_throttle": -0.6, "replication_lag": -0.5, "net_latency": -0.5,
    "cache_ttl": -0.5, "quota": -0.5, "cert_expiry": -0.4, "waf": -0.4, "release_latency": -0.3,
    "upstream": -0.3, "cooling": -0.3, "deadlocks": -0.3, "disk_failure": -0.2, "brute_force": -0.2,
    "packet_loss": -0.2, "autoscaler_max": -0.3, "component_failure": -0.3,
}  # fmt: skip
_THRESHOLDS = (0.94, 2.0, 3.06)
_SCORE_NOISE = 0.32
_HINT_AGREEMENT = 0.7

_BY_CATEGORY: dict[str, tuple[_Scenario, ...]] = {
    c: tuple(s for s in _SCENARIOS if s.category == c) for c in CATEGORIES
}


def _db_name(name: str) -> str:
    svc = SERVICES[name]
    if svc.kind == "datastore":
        return name
    return next((d for d in svc.depends_on if d.endswith("-db")), f"{name}-db")


_DB = {n: _db_name(n) for n in SERVICES}
# Kinds that are not in the catalog: services backed by a SQL database, and the ones that take money.
_PSEUDO_KINDS = {
    "sql": tuple(n for n in SERVICES if _DB[n].endswith("-db") and _DB[n] in SERVICES),
    "money": ("payments", "checkout", "billing", "orders"),
}
_ALL_SERVICES = tuple(SERVICES)
_SERVICES_BY_SCENARIO: dict[str, tuple[str, ...]] = {
    s.key: tuple(
        n
        for n, svc in SERVICES.items()
        if svc.kind in s.kinds or any(n in _PSEUDO_KINDS.get(k, ()) for k in s.kinds)
    )
    for s in _SCENARIOS
}
_KEBAB = {s.alert: re.sub(r"(?<!^)(?=[A-Z][a-z])", "-", s.alert).lower() for s in _SCENARIOS}

_REGIONS = (
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-2", "US West (Oregon)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
)
_VENDORS = ("Auth0", "Cloudflare", "Adyen", "Segment", "Algolia", "Shippo", "Avalara", "Plaid")
_MSG_VENDORS = ("Twilio", "SendGrid", "Mailgun", "Vonage")
_FLAGS = (
    "new_checkout_flow",
    "enable_async_capture",
    "use_v2_pricing",
    "search_rerank_v3",
    "batch_writes",
    "strict_token_audience",
    "edge_cache_bypass",
    "kafka_compression_zstd",
)
_CONFIG_KEYS = ("upstream_timeout_ms", "max_pool_size", "retry_budget", "worker_concurrency", "cache_ttl_s")
_QUOTAS = ("EC2 vCPU", "Lambda concurrency", "EBS gp3 storage", "NAT gateway", "DynamoDB write capacity")
_TOPICS = ("orders.v1", "payments.events", "user-signups", "inventory-updates", "email-outbox")
_TEAMS = ("platform", "payments", "identity", "core-api", "data", "growth", "sre")
_PEOPLE = ("Priya Natarajan", "Tom Becker", "Ana Souza", "Kenji Ito", "Fatima Zahra", "Luca Romano")
_METHODS = ("place", "handle", "process", "charge", "render", "validate", "sync")
_HEX = "0123456789abcdef"
_POD_CHARS = "bcdfghjklmnpqrstvwxz2456789"

_HINT_WORDS: dict[str, dict[str, str]] = {
    "alertmanager": {"critical": "critical", "high": "high", "medium": "warning", "low": "info"},
    "datadog": {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"},
    "sentry": {"critical": "fatal", "high": "error", "medium": "warning", "low": "info"},
    "pagerduty": {"critical": "high", "high": "high", "medium": "low", "low": "low"},
    "statuspage": {
        "critical": "major outage",
        "high": "partial outage",
        "medium": "degraded performance",
        "low": "degraded performance",
    },
}

_IMPACT: tuple[tuple[str, ...], ...] = (
    ("No customer impact.", "No user impact observed.", "Customers unaffected so far.", "Internal only."),
    (
        "Some customers are seeing errors.",
        "About {upct}% of requests affected.",
        "{users} users affected.",
        "Intermittent failures for a subset of users.",
    ),
    (
        "Customers cannot {verb}.",
        "{users} users affected.",
        "Failing for all users.",
        "About {upct}% of requests failing; full customer-facing outage.",
    ),
)
_HUMAN_IMPACT: tuple[tuple[str, ...], ...] = (
    ("no user impact afaict", "nothing customer facing yet", "not urgent"),
    ("a few customers complaining", "some users seeing it", "support has a couple tickets"),
    ("for everyone", "customers can't {verb}", "support queue is on fire", "totally down for users"),
)
_STATUS_IMPACT: tuple[str, ...] = (
    "a minor issue with no expected impact",
    "degraded performance",
    "elevated error rates",
    "an outage",
)
_BREADTH: tuple[tuple[str, ...], ...] = (
    ("on {host}", "on pod {pod}", "on a single node ({node})"),
    ("in {az}", "on {k} of {n} nodes in {az}", "in cluster prod-{region}-2"),
    ("across {region}", "region-wide in {region}"),
    ("in all regions", "globally (us-east-1, eu-west-1, ap-southeast-1)", "across every region"),
)
_HUMAN_BREADTH: tuple[tuple[str, ...], ...] = (
    ("only on {host}", "just one pod affected", "only {pod} so far"),
    ("only in {az}", "a few nodes affected"),
    ("whole {region} region", "all of {region}"),
    ("happening everywhere", "all regions affected"),
)
_DEPLOY_RECENT = (
    "Started right after the {ver} deploy {mins} minutes ago.",
    "{svc} {ver} was deployed {mins} minutes ago.",
    "Deploy of {ver} finished at {hhmm} ({mins} min ago).",
    "Began when canary {ver} went to 25% at {hhmm}.",
)
_HUMAN_DEPLOY_RECENT = (
    "started after the {hhmm} deploy",
    "right after {ver} went out",
    "since the deploy {mins}m ago",
)
_DEPLOY_OLD = ("Last deploy was {days} days ago ({ver}).", "No deploys since {ver}, {days} days ago.")
_CONFIG_CHANGE = (
    "Feature flag `{flag}` enabled at {hhmm}.",
    "Config push to {svc} at {hhmm} changed {key}.",
    "Flag `{flag}` flipped to 100% at {hhmm}.",
    "terraform apply at {hhmm} changed {svc} settings.",
)
_HUMAN_CONFIG_CHANGE = ("started when {flag} got enabled at {hhmm}", "right after the config push at {hhmm}")
# Negated mentions of other categories, so that a keyword is never enough on its own.
_DECOYS: dict[str, str] = {
    "database": "Database metrics look normal.",
    "deployment": "No deploys in the last 24h.",
    "configuration": "No config changes today.",
    "network": "Network looks fine.",
    "hardware": "Hosts are healthy.",
    "resource_exhaustion": "CPU and memory are fine.",
    "third_party": "Vendor status pages are all green.",
    "security": "No sign of malicious traffic.",
    "software_bug": "No new exceptions in Sentry.",
}
# Circumstances that make an alert minor whatever its numbers say, as an on-call engineer reads them: not
# production, already over, or announced in advance. Alert sources and people word them differently.
_ALERT_STATE: tuple[tuple[str, ...], ...] = (
    ("slightly above threshold", "approaching the limit", "elevated but stable", "trending up slowly"),
    ("degraded", "well above threshold", "getting worse", "partially failing"),
    ("hard down", "failing", "completely broken", "at its limit and failing", "unavailable"),
)
_HUMAN_STATE: tuple[tuple[str, ...], ...] = (
    ("a bit elevated", "not urgent yet", "creeping up"),
    ("getting worse", "pretty degraded", "partly broken"),
    ("totally broken", "completely down", "on fire", "dead"),
)
# "resolved": the notification a source sends when the alert clears, repeating what fired.
_CIRCUMSTANCES = ("staging", "transient", "planned", "resolved")
_CIRCUMSTANCE_SHARE = (0.06, 0.05, 0.025, 0.04)
_ALERT_CIRCUMSTANCE: dict[str, tuple[str, ...]] = {
    "staging": ("Environment: staging.", "Staging only, production unaffected.", "Seen in the dev cluster."),
    "transient": (
        "Flapped once and recovered.",
        "Auto-resolved after {mins} minutes.",
        "Single occurrence; the retry succeeded.",
        "Recovered on its own a minute later.",
    ),
}
_HUMAN_CIRCUMSTANCE: dict[str, tuple[str, ...]] = {
    "staging": ("only in staging", "this is the dev env", "staging only, prod is fine"),
    "transient": (
        "flapped once and recovered",
        "went away on its own",
        "retry worked",
        "only once, recovered",
    ),
}
_PLANNED = (
    "FYI: scheduled maintenance of {svc} tonight at {hhmm} UTC",
    "Heads up: planned failover drill for {db} at {hhmm} UTC",
    "Maintenance window for {svc} starts at {hhmm}, expect brief errors",
    "FYI: we are upgrading {db} on Saturday, {mins} minutes of read-only mode expected",
)
_HUMAN_OPENERS = ("", "", "anyone else seeing this? ", "hey team, ", "@oncall ", "heads up: ", "uh oh, ")
_DEPLOY_AWARE = frozenset({"deployment", "software_bug", "database", "resource_exhaustion"})
_FAILOVER_AWARE = frozenset({"database", "hardware"})  # a standby to fail over to is usual for these


@dataclass(slots=True)
class _Row:
    """The hidden causes of one incident, and everything its text is rendered from."""

    sc: _Scenario
    svc: str
    tier: int
    sev: str
    hint: str
    impact: int
    breadth: int
    dur: int
    m: float
    raw: float
    deploy: str  # "recent", "old" or ""
    config: bool
    f: _Fields
    rng: random.Random
    circumstance: str = ""  # "", or one of _CIRCUMSTANCES

    def t(self, template: str) -> str:
        return template.format_map(self.f)

    def pick(self, options: tuple[str, ...]) -> str:
        return self.t(_choice(self.rng, options))


def _choice(rng: random.Random, seq: Sequence[T]) -> T:
    """``rng.choice`` at a third of the cost (one float per draw), which keeps 50k rows within seconds."""
    return seq[int(rng.random() * len(seq))]


def _int(rng: random.Random, a: int, b: int) -> int:
    return a + int(rng.random() * (b - a + 1))


def _token(rng: random.Random, alphabet: str, k: int) -> str:
    x = int(rng.random() * len(alphabet) ** k)
    out = []
    for _ in range(k):
        x, d = divmod(x, len(alphabet))
        out.append(alphabet[d])
    return "".join(out)


def _level(unit: str, lo: float, hi: float, m: float) -> float:
    """The metric at magnitude ``m``: log-scaled for rates, latencies and counts, linear for percentages."""
    if unit in ("rate", "ms", "s", "count"):
        return lo * (hi / lo) ** m
    return lo + (hi - lo) * m


def _fmt(unit: str, v: float) -> str:
    if unit == "rate":
        return f"{v:.2f}%" if v < 1 else f"{v:.1f}%"
    if unit == "pct":
        return f"{v:.1f}%"
    if unit == "ms":
        return f"{v:.0f}ms" if v < 1000 else f"{v / 1000:.1f}s"
    if unit == "s":
        return f"{v:.0f}s" if v < 120 else f"{v / 60:.0f} minutes"
    if unit == "temp":
        return f"{v:.0f}°C"
    return f"{v:,.0f}"


def _metric(sc: _Scenario, m: float, rng: random.Random) -> tuple[float, str, str, str]:
    """(raw value, its text, the alert threshold as text and as a bare number) for magnitude ``m``."""
    if sc.unit == "ready":
        n = _int(rng, 3, 12)
        ready = min(n - 1, max(0, round(n * (1 - m))))
        return ready, f"{ready}/{n}", str(n), str(n)
    if sc.unit == "cert":
        if m < 0.65:
            days = 1 + round(29 * (1 - m / 0.65))
            return days, f"expires in {days} days", "30 days", "30"
        hours = 1 + round((m - 0.65) * 140)
        return -hours / 24, f"expired {hours}h ago", "30 days", "30"
    v = _level(sc.unit, sc.lo, sc.hi, m)
    return v, _fmt(sc.unit, v), _fmt(sc.unit, sc.lo), f"{sc.lo:g}"


def _host(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"ip-10-{_int(rng, 0, 31)}-{_int(rng, 0, 255)}-{_int(rng, 2, 254)}.ec2.internal"
    if r < 0.75:
        return f"db-prod-{_int(rng, 1, 12)}"
    return f"gke-prod-pool-{_int(rng, 1, 4)}-{_token(rng, _HEX, 8)}-{_token(rng, _HEX, 4)}"


def _score(
    sc: _Scenario, m: float, tier: int, impact: int, breadth: int, dur: int, rng: random.Random
) -> float:
    """How bad it is: magnitude first, then the kind of failure, tier, customer impact, breadth and
    duration, plus noise."""
    return (
        2.0 * m
        + _KIND_SCORE.get(sc.key, 0.0)
        + _TIER_SCORE[tier]
        + 0.45 * impact
        + 0.18 * breadth
        + 0.25 * math.log10(dur / 15)
        + rng.gauss(0.0, _SCORE_NOISE)
    )


def _severity(score: float) -> str:
    return SEVERITIES[3 - sum(score > t for t in _THRESHOLDS)]


def _hint(sev: str, rng: random.Random) -> str:
    """The source's own severity: right ~70% of the time, else one level off (as real routing rules are)."""
    if rng.random() < _HINT_AGREEMENT:
        return sev
    i = SEVERITIES.index(sev)
    if i == 0:
        return SEVERITIES[1]
    if i == 3:
        return SEVERITIES[2]
    return SEVERITIES[i + _choice(rng, (-1, 1))]


def _actions(r: _Row) -> tuple[str, ...]:
    """Ranked remediation: the scenario's fix, shaped by recent changes, severity and tier."""
    acts = list(r.sc.actions)
    if r.sc.key == "surge" and r.sev in ("critical", "high"):
        acts = ["throttle_traffic", "scale_up"]
    if r.deploy == "recent" and r.sc.category in _DEPLOY_AWARE:
        acts.insert(0, "rollback_deploy")
    if r.sev == "critical" and r.tier == 1 and r.sc.category in _FAILOVER_AWARE:
        acts.append("failover")
    if r.sev == "low" and r.rng.random() < 0.6:
        if acts[0] in ("rollback_deploy", "revert_config"):  # undoing a fresh change stays first
            acts = [acts[0], "monitor"]
        else:
            acts = ["monitor", acts[0]] if r.rng.random() < 0.5 else ["monitor"]
    return tuple(dict.fromkeys(acts))[:3]


def _typos(text: str, rng: random.Random) -> str:
    """Swap or drop a letter in ~5% of longer words, as people type in a hurry."""
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) > 3 and w.isalpha() and rng.random() < 0.05:
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return " ".join(words)


def _context(r: _Row) -> str:
    """The recent change (or its absence) that drives the ranked actions, as a sentence."""
    if r.config:
        return r.pick(_CONFIG_CHANGE)
    if r.deploy == "recent":
        return r.pick(_DEPLOY_RECENT)
    if r.deploy == "old":
        return r.pick(_DEPLOY_OLD)
    return ""


def _extras(r: _Row) -> str:
    """Impact words (when the source would say them), the change context, and sometimes a decoy."""
    parts = [r.pick(_ALERT_CIRCUMSTANCE[r.circumstance])] if r.circumstance in _ALERT_CIRCUMSTANCE else []
    if r.impact or r.rng.random() < 0.55:
        parts.append(r.pick(_IMPACT[r.impact]))
    ctx = _context(r)
    if ctx:
        parts.append(ctx)
    if r.rng.random() < 0.2:
        cat = _choice(r.rng, CATEGORIES)
        blocked = (
            r.sc.category == cat
            or (cat == "deployment" and r.deploy)
            or (cat == "configuration" and r.config)
        )
        if not blocked:
            parts.append(_DECOYS[cat])
    return " ".join(parts)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _state(r: _Row, words: tuple[tuple[str, ...], ...]) -> str:
    """How far gone it is, in the words people use (mild, worse, broken), by the magnitude shown; said
    in 60% of messages. They lean with severity, as the magnitude does, but never decide it."""
    if r.rng.random() >= 0.6:
        return ""
    return ", " + _choice(r.rng, words[0 if r.m < 0.35 else 1 if r.m < 0.7 else 2])


def _symptom(r: _Row) -> str:
    """What is wrong and where: the scenario's symptom with its magnitude, then the breadth and state."""
    return f"{_cap(r.pick(r.sc.symptoms))} {r.pick(_BREADTH[r.breadth])}{_state(r, _ALERT_STATE)}"


def _alertmanager(r: _Row) -> tuple[str, str]:
    firing = (1, _int(r.rng, 2, 4), _int(r.rng, 5, 12), _int(r.rng, 13, 40))[r.breadth]
    hint = _HINT_WORDS["alertmanager"][r.hint]
    env = "staging" if r.circumstance == "staging" else "prod"
    where = (
        f" - instance = {r.f['host']}:9100\n - pod = {r.f['pod']}"
        if r.breadth < 2
        else (f" - region = {r.f['region']}" if r.breadth == 2 else " - cluster = prod-global")
    )
    desc = (
        f"Labels:\n - alertname = {r.sc.alert}\n - severity = {hint}\n - service = {r.svc}\n"
        f" - namespace = {r.svc}-{env}\n{where}\nAnnotations:\n - summary = {_cap(r.t(r.sc.headline))}\n"
        f" - description = {_symptom(r)}, for {r.dur}m. {_extras(r)}\n"
        f" - runbook_url = https://runbooks.example.com/{_KEBAB[r.sc.alert]}\n"
        f"Source: http://prometheus-k8s-0.monitoring:9090/graph?g0.expr={r.sc.metric}%3E{r.f['thr_num']}"
    )
    return f"[FIRING:{firing}] {r.sc.alert} {r.svc} ({hint})", desc


def _grafana(r: _Row) -> tuple[str, str]:
    uid = _token(r.rng, _POD_CHARS, 9)
    folder = _choice(r.rng, ("Infrastructure", "Services", "SLOs", r.svc.title()))
    desc = (
        f"**Firing**\nValue: B0={r.raw:.1f}\nLabels:\n - alertname = {_cap(r.t(r.sc.headline))}\n"
        f" - grafana_folder = {folder}\n - service = {r.svc}\n - region = {r.f['region']}\nAnnotations:\n"
        f" - summary = {_symptom(r)} for {r.dur}m. {_extras(r)}\n"
        f"Source: https://grafana.example.com/alerting/grafana/{uid}/view\n"
        f"Dashboard: https://grafana.example.com/d/{uid}/{r.svc}-overview"
    )
    return f"[Alerting] {_cap(r.t(r.sc.headline))}", desc


def _datadog(r: _Row) -> tuple[str, str]:
    window = _choice(r.rng, (5, 10, 15))
    metric = r.sc.metric.replace("_", ".")
    query = f"avg(last_{window}m):avg:{metric}{{service:{r.svc},env:prod}} > {r.f['thr_num']}"
    desc = (
        f"{_symptom(r)}.\n"
        f"Value {r.f['v']} crossed the threshold {r.f['thr']}, triggered for {r.dur}m.\n{_extras(r)}\n"
        f"Query: {query}\n@slack-incidents @pagerduty-{r.svc}"
    )
    return f"[{_HINT_WORDS['datadog'][r.hint]}] Triggered: {_cap(r.t(r.sc.headline))}", desc


def _sentry(r: _Row) -> tuple[str, str]:
    events = max(3, round(10 ** (1 + 3.5 * r.m) * r.rng.uniform(0.6, 1.4)))
    users = r.f["users"] if r.impact else str(_int(r.rng, 0, 12))
    culprit = f"{r.svc.title().replace('-', '')}Service.{_choice(r.rng, _METHODS)}"
    short_id = f"{r.svc.upper()}-{_token(r.rng, _POD_CHARS.upper(), 3)}"
    desc = (
        f"level: {_HINT_WORDS['sentry'][r.hint]}\nevents: {events:,} in the last {r.dur}m\n"
        f"users affected: {users}\nrelease: {r.svc}@{r.f['ver'][1:]}\nculprit: {culprit}\n"
        f"environment: production\nserver_name: {r.f['pod']}\n"
        f"message: {_symptom(r)}. {_extras(r)}\n"
        f"https://acme.sentry.io/issues/{short_id}/"
    )
    return r.pick(r.sc.exceptions), desc


def _cloudwatch(r: _Row) -> tuple[str, str]:
    env = f"{_choice(r.rng, ('dev', 'staging'))}-" if r.circumstance == "staging" else ""
    alarm = f"{env}{r.svc}-{_KEBAB[r.sc.alert]}"
    code, name = r.f["region"], r.f["region_name"]
    namespace, metric = r.sc.cloudwatch
    crossed = (
        f"Threshold Crossed: 1 out of the last 1 datapoints [{r.raw:.1f} ({r.f['date']} {r.f['hhmm']}:00)] "
        f"was greater than or equal to the threshold ({r.f['thr_num']})."
    )
    desc = (
        f'You are receiving this email because your Amazon CloudWatch Alarm "{alarm}" in the {name} '
        f'region has entered the ALARM state, because "{crossed}"\nAlarm Details:\n- Name: {alarm}\n'
        f"- Description: {_symptom(r)}. {_extras(r)}\n"
        f"- State Change: OK -> ALARM\n- Reason for State Change: {crossed}\n"
        f"Monitored Metric:\n- MetricNamespace: {namespace}\n- MetricName: {metric}\n"
        f"- Dimensions: [Service = {r.svc}]\n- Period: 60 seconds\n- Statistic: Average"
    )
    return f'ALARM: "{alarm}" in {_choice(r.rng, (name, code))}', desc


def _pagerduty(r: _Row) -> tuple[str, str]:
    desc = (
        f"Urgency: {_HINT_WORDS['pagerduty'][r.hint]}\nService: {r.svc} (production)\n"
        f"Escalation policy: {_choice(r.rng, _TEAMS)} on-call\nAssigned to: {_choice(r.rng, _PEOPLE)}\n"
        f"Details: {_symptom(r)}, open for {r.dur} minutes. "
        f"{_extras(r)}\nAlert: {r.sc.alert}"
    )
    return f"[#{_int(r.rng, 10000, 99999)}] Triggered: {_cap(r.t(r.sc.headline))}", desc


def _human(r: _Row) -> tuple[str, str]:
    """A terse lower-case chat message: the symptom first, then whatever the person adds."""
    rng = r.rng
    title = _choice(rng, _HUMAN_OPENERS) + r.pick(r.sc.human)
    parts = [r.pick(_HUMAN_BREADTH[r.breadth]) + _state(r, _HUMAN_STATE)]
    if r.impact or rng.random() < 0.4:
        impact = r.pick(_HUMAN_IMPACT[r.impact])
        if rng.random() < 0.5:
            title = f"{title}, {impact}"
        else:
            parts.append(impact)
    if r.config:
        parts.append(r.pick(_HUMAN_CONFIG_CHANGE))
    elif r.deploy == "recent":
        parts.append(r.pick(_HUMAN_DEPLOY_RECENT))
    elif r.deploy == "old":
        parts.append(r.t("last deploy was {days} days ago"))
    if r.circumstance in _HUMAN_CIRCUMSTANCE:
        parts.append(r.pick(_HUMAN_CIRCUMSTANCE[r.circumstance]))
    rest = [f"been like this {r.dur} min", f"grafana: {r.f['v']}", "can someone look?"]
    rng.shuffle(rest)
    rng.shuffle(parts)
    return _typos(title.lower(), rng), _typos(", ".join(parts + rest[: _int(rng, 1, 3)]).lower(), rng)


def _rule(r: _Row) -> tuple[str, str]:
    """An alerting rule as a chat integration posts it: the rule's name, then its summary and a one-line
    description with the value; no labels block. Most real alerts are this short."""
    desc = f"{_cap(r.t(r.sc.headline))}. {_symptom(r)}"
    if r.rng.random() < 0.5:
        desc += f" for the last {r.dur} minutes"
    desc += "."
    if r.impact or r.rng.random() < 0.3:
        desc += " " + r.pick(_IMPACT[r.impact])
    if r.config or r.deploy == "recent":  # the change the actions undo: without it they are guesses
        desc += " " + _context(r)
    if r.circumstance in _ALERT_CIRCUMSTANCE:
        desc += " " + r.pick(_ALERT_CIRCUMSTANCE[r.circumstance])
    title = r.sc.alert
    if r.rng.random() < 0.3:  # rule authors often name the level in the alert ("...Critical", "...Warning")
        title += _cap(_HINT_WORDS["alertmanager"][r.hint])
    return title, desc


def _oneliner(r: _Row) -> tuple[str, str]:
    """One short line typed by a person: what broke, sometimes who is hit or what changed, nothing else."""
    rng = r.rng
    line = _choice(rng, _HUMAN_OPENERS) + r.pick(r.sc.human)
    if r.impact == 2 or rng.random() < 0.4:
        line += ", " + r.pick(_HUMAN_IMPACT[r.impact])
    if r.config and rng.random() < 0.6:
        line += ", " + r.pick(_HUMAN_CONFIG_CHANGE)
    elif r.deploy == "recent" and rng.random() < 0.6:
        line += ", " + r.pick(_HUMAN_DEPLOY_RECENT)
    line += _state(r, _HUMAN_STATE)
    if r.circumstance in _HUMAN_CIRCUMSTANCE:
        line += ", " + r.pick(_HUMAN_CIRCUMSTANCE[r.circumstance])
    return _typos(line if rng.random() < 0.5 else _cap(line), rng), ""


def _statuspage(r: _Row) -> tuple[str, str]:
    """Public status updates: vague impact words, the cause only once identified, no metrics."""
    name = r.svc.replace("-", " ").title()
    status = _HINT_WORDS["statuspage"][r.hint]
    titles = (
        f"Degraded performance for {name}",
        f"Incident with {name}",
        f"{name}: {status}",
        f"Issues with {name}",
    )
    where = "" if r.breadth < 2 else (f" in {r.f['region_name']}" if r.breadth == 2 else " in all regions")
    impact = _STATUS_IMPACT[r.impact + (r.breadth > 2)]
    lines = [f"Investigating - We are investigating reports of {impact} for {name}{where}."]
    if r.impact:
        lines.append(
            r.pick(("About {upct}% of requests are affected.", "Some customers may be unable to {verb}."))
        )
    if r.config or r.deploy == "recent":
        lines.append(f"Update - {_context(r)}")
    if r.rng.random() < 0.7:
        lines.append(
            f"Identified - The cause has been identified: {r.pick(r.sc.causes)}. A fix is being rolled out."
        )
    if r.rng.random() < 0.5:
        lines.append("Resolved - This incident has been resolved.")
    lines.append(f"Affected components: {name} ({status})")
    return _choice(r.rng, titles), "\n".join(lines)


def _postmortem(r: _Row) -> tuple[str, str]:
    """A written summary after the fact: impact and root cause spelled out, remediation left out."""
    kind = _choice(r.rng, ("Post-incident review", "Incident summary", "Postmortem"))
    desc = (
        f"Summary: starting {r.f['hhmm']} UTC, for {r.dur} minutes, {r.pick(r.sc.symptoms)} "
        f"{r.pick(_BREADTH[r.breadth])}.\nImpact: {r.pick(_IMPACT[r.impact])}\n"
        f"Trigger: {_context(r) or 'none identified.'}\nRoot cause: {r.pick(r.sc.causes)}.\n"
        f"Detection: {r.sc.alert} alert after {_int(r.rng, 1, 15)} minutes."
    )
    return f"{kind}: {r.t(r.sc.headline)}", desc


_HUMAN_RESOLVED = (", fixed now", ", resolved, back to normal", ", all good now", " - recovered, nvm")


def _resolved(style: str, r: _Row, title: str, desc: str) -> tuple[str, str]:
    """The notice a source sends when the alert clears: its own resolved marker on what had fired (the
    sources repeat the firing annotations, so the symptom words stay)."""
    if style == "alertmanager":
        return re.sub(r"^\[FIRING:\d+\]", "[RESOLVED]", title), desc
    if style == "grafana":
        marker = _choice(r.rng, ("[OK]", "[RESOLVED]"))
        return title.replace("[Alerting]", marker), desc.replace("**Firing**", "**Resolved**")
    if style == "datadog":
        return title.replace("Triggered:", "Recovered:"), desc.replace("triggered for", "recovered after")
    if style == "cloudwatch":
        desc = desc.replace("the ALARM state", "the OK state").replace("OK -> ALARM", "ALARM -> OK")
        return title.replace("ALARM:", "OK:", 1), desc
    if style == "pagerduty":
        return title.replace("Triggered:", "Resolved:"), desc
    if style in ("human", "oneliner"):
        return title + r.pick(_HUMAN_RESOLVED), desc
    return f"Resolved: {title}" if style == "sentry" else f"[RESOLVED] {title}", desc


_RENDER = {
    "alertmanager": _alertmanager,
    "grafana": _grafana,
    "datadog": _datadog,
    "sentry": _sentry,
    "cloudwatch": _cloudwatch,
    "pagerduty": _pagerduty,
    "human": _human,
    "statuspage": _statuspage,
    "postmortem": _postmortem,
    "rule": _rule,
    "oneliner": _oneliner,
}


def _verb(svc: str) -> str:
    if svc in ("payments", "billing"):
        return "pay"
    if svc in ("checkout", "cart"):
        return "check out"
    if svc in ("auth", "login"):
        return "log in"
    return f"use {svc}"


class _Fields(dict[str, str]):
    """Template placeholders, each drawn the first time a template asks for it.

    Rows use a handful of the placeholders; drawing only those keeps 50k rows well within seconds.
    """

    __slots__ = ("impact", "m", "rng")

    def __init__(self, values: dict[str, str], m: float, impact: int, rng: random.Random) -> None:
        super().__init__(values)
        self.m, self.impact, self.rng = m, impact, rng

    def __missing__(self, key: str) -> str:
        value = _LAZY[key](self)
        self[key] = value
        return value


def _upct(f: _Fields) -> str:
    lo, hi = ((0.5, 3.0), (2.0, 20.0), (25.0, 100.0))[f.impact]
    u = f.rng.uniform(lo, hi)
    return f"{u:.0f}" if u >= 1 else f"{u:.1f}"


def _users(f: _Fields) -> str:
    lo, hi = ((1, 40), (30, 4000), (3000, 250000))[f.impact]
    return f"{_int(f.rng, lo, hi):,}"


_LAZY = {
    "host": lambda f: _host(f.rng),
    "node": lambda f: f["host"],
    "pod": lambda f: f"{f['svc']}-{_token(f.rng, _HEX, 9)}-{_token(f.rng, _POD_CHARS, 5)}",
    "az": lambda f: f"{f['region']}{_choice(f.rng, 'abc')}",
    "az2": lambda f: f"{f['region']}{_choice(f.rng, 'df')}",
    "n": lambda f: str(_int(f.rng, 6, 40)),
    "k": lambda f: str(_int(f.rng, 2, max(2, int(f["n"]) // 2))),
    "ver": lambda f: f"v{_int(f.rng, 1, 4)}.{_int(f.rng, 0, 30)}.{_int(f.rng, 0, 12)}",
    "mins": lambda f: str(_int(f.rng, 2, 45)),
    "days": lambda f: str(_int(f.rng, 2, 20)),
    "hhmm": lambda f: f"{_int(f.rng, 0, 23):02d}:{_int(f.rng, 0, 59):02d}",
    "date": lambda f: f"2024-{_int(f.rng, 1, 12):02d}-{_int(f.rng, 1, 28):02d}",
    "flag": lambda f: _choice(f.rng, _FLAGS),
    "key": lambda f: _choice(f.rng, _CONFIG_KEYS),
    "quota": lambda f: _choice(f.rng, _QUOTAS),
    "topic": lambda f: _choice(f.rng, _TOPICS),
    "rack": lambda f: f"{_choice(f.rng, 'ABCDEF')}{_int(f.rng, 1, 24)}",
    "vendor": lambda f: _choice(f.rng, _VENDORS),
    "msg_vendor": lambda f: _choice(f.rng, _MSG_VENDORS),
    "p99": lambda f: _fmt("ms", 150 * 60 ** min(1.0, f.m + f.rng.gauss(0, 0.1))),
    "waiting": lambda f: str(round(5 * 200**f.m)),
    "restarts": lambda f: str(1 + round(f.m * 25)),
    "throttled": lambda f: str(round(10 + 80 * f.m)),
    "mult": lambda f: f"{1.5 + 6 * f.m:.1f}",
    "lag": lambda f: f"{round(2000 * 1000**f.m):,}",
    "ips": lambda f: f"{round(3 * 3000**f.m):,}",
    "upct": _upct,
    "users": _users,
}


def _clean_row(i: int, seed: int, rng: random.Random) -> LabeledIncident:
    """One incident with clean labels, all drawn from ``rng``."""
    category = _choice(rng, CATEGORIES)
    sc = _choice(rng, _BY_CATEGORY[category])
    svc = _choice(rng, _SERVICES_BY_SCENARIO[sc.key] if rng.random() < 0.85 else _ALL_SERVICES)
    tier = SERVICES[svc].tier
    style = _choice(rng, STYLES)
    m = rng.random()
    p = 0.75 * m + 0.25 * rng.random() + (0.1 if tier == 1 else -0.15 if tier == 3 else 0.0)
    impact = 0 if p < 0.35 else 1 if p < 0.7 else 2
    q = 0.5 * m + 0.5 * rng.random()
    breadth = 0 if q < 0.3 else 1 if q < 0.5 else 2 if q < 0.72 else 3
    dur = max(1, min(600, round(math.exp(rng.gauss(2.6, 0.9)))))
    sev = fired = _severity(_score(sc, m, tier, impact, breadth, dur, rng))
    circumstance, u = "", rng.random()
    if style not in ("statuspage", "postmortem"):  # published after the fact, about production
        for name, share in zip(_CIRCUMSTANCES, _CIRCUMSTANCE_SHARE, strict=True):
            if u < share:
                # a resolved notice repeats the impact that fired; the others never had any
                circumstance, sev, impact = name, "low", impact if name == "resolved" else 0
                break
            u -= share
    config = category == "configuration"
    if category == "deployment":
        deploy = "recent"
    elif config:
        deploy = ""
    else:
        d = rng.random()
        p_recent = 0.12 if category in _DEPLOY_AWARE else 0.05
        deploy = "recent" if d < p_recent else "old" if d < p_recent + 0.2 else ""
    shown = min(1.0, max(0.0, m + rng.gauss(0.0, 0.05)))
    raw, v, thr, thr_num = _metric(sc, shown, rng)
    region, region_name = _choice(rng, _REGIONS)
    values = {
        "svc": svc,
        "v": v,
        "thr": thr,
        "thr_num": thr_num,
        "region": region,
        "region_name": region_name,
    }
    fields = _Fields({**values, "db": _DB[svc], "verb": _verb(svc)}, shown, impact, rng)
    r = _Row(
        sc,
        svc,
        tier,
        sev,
        _hint(fired if circumstance == "resolved" else sev, rng),  # a resolved notice keeps its level
        impact,
        breadth,
        dur,
        shown,
        raw,
        deploy,
        config,
        fields,
        rng,
        circumstance,
    )
    if circumstance == "planned":  # a person's announcement, not an alert: nothing to do but watch
        style, title, desc, actions = "oneliner", r.pick(_PLANNED), "", ("monitor",)
    else:
        actions = ("monitor",) if circumstance in ("transient", "resolved") else _actions(r)
        title, desc = _RENDER[style](r)
        if circumstance == "resolved":
            title, desc = _resolved(style, r, title, desc)
    tags = ("synthetic", "env:prod", f"region:{fields['region']}", f"team:{_choice(rng, _TEAMS)}")
    return LabeledIncident(
        title=title,
        description=desc,
        service=svc,
        severity=sev,
        category=category,
        actions=actions,
        source=f"synthetic/{style}",
        provider=None,
        id=f"syn-{seed}-{i}",
        tags=tags,
    )


def _noisy(row: LabeledIncident, label_noise: float, rng: random.Random) -> LabeledIncident:
    """Independently replace severity, category and actions with probability ``label_noise``.

    Every row draws the same numbers whatever ``label_noise`` is, so noise levels nest for a given seed.
    """
    u_sev, u_cat, u_act = rng.random(), rng.random(), rng.random()
    sev = SEVERITIES[(SEVERITIES.index(str(row.severity)) + _int(rng, 1, 3)) % len(SEVERITIES)]
    cat = CATEGORIES[(CATEGORIES.index(str(row.category)) + _int(rng, 1, 8)) % len(CATEGORIES)]
    acts = tuple(rng.sample(ACTIONS, _int(rng, 1, 3)))
    if min(u_sev, u_cat, u_act) >= label_noise:
        return row
    return replace(
        row,
        severity=sev if u_sev < label_noise else row.severity,
        category=cat if u_cat < label_noise else row.category,
        actions=acts if u_act < label_noise else row.actions,
    )


def generate_incidents(n: int, seed: int = 0, label_noise: float = 0.0) -> list[LabeledIncident]:
    """``n`` reproducible synthetic incidents; the first ``k`` rows are the same for any ``n >= k``."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError("label_noise must be in [0, 1]")
    rng = random.Random(seed)
    noise_rng = random.Random(f"{seed}:label-noise")
    rows = []
    for i in range(n):
        row = _clean_row(i, seed, rng)
        rows.append(_noisy(row, label_noise, noise_rng) if label_noise else row)
    return rows
