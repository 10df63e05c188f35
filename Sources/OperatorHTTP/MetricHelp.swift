/// The `# HELP` text of every metric the worker exports, by name.
///
/// swift-metrics has no notion of help text, so the backend looks each name up here when the
/// metric is first made (``DescribedMetricsFactory``). A metric missing from this table is
/// exported without a HELP line, which `MetricsExpositionTests` reports. Keep the wording in step
/// with the metric reference in docs/operations.md.
public enum MetricHelp {
    public static let text: [String: String] = [
        "sg_commits_total": "Commit script results by outcome: applied, duplicate (already applied), stale (older fence), lost (token gone).",
        "sg_dead_lettered_total": "Entries moved to the dead-letter stream, by reason.",
        "sg_handler_errors_total": "Handler attempts that threw.",
        "sg_retries_total": "Messages tried again inside the worker, by cause.",
        "sg_gap_timeouts_total": "Missing sequence numbers skipped after gap-timeout.",
        "sg_reclaimed_total": "Entries taken over from idle consumers with XAUTOCLAIM.",
        "sg_in_flight_channels": "Channels being processed now.",
        "sg_in_flight_messages": "Messages accepted and not finished (queued or running).",
        "sg_group_pending": "The consumer group's delivered but unacknowledged entries (XINFO GROUPS).",
        "sg_group_lag": "Entries not yet delivered to the consumer group (XINFO GROUPS); absent while Redis cannot tell.",
        "sg_end_to_end_seconds": "From an entry's id time (Redis clock) to its applied commit (worker clock).",
        "sg_lock_acquire_wait_seconds": "From the first claim attempt to holding the channel lock.",
        "sg_lock_hold_seconds": "From claim to commit or release of a channel lock.",
        "sg_lock_contention_total": "Claim attempts that found the lock held by another holder.",
        "sg_lock_renewals_total": "Successful watchdog renewals of lock leases.",
        "sg_lock_lease_losses_total": "Leases lost while held, by cause.",
        "sg_lock_fence_rejections_total": "Writes a FencedWriter refused for an older fence.",
        "sg_redis_reconnects_total": "Redis connections re-established after a drop.",
        "sg_redis_connect_failures_total": "Failed Redis connection attempts.",
        "sg_ready": "1 while /health/ready answers 200, else 0.",
        "sg_build_info": "Always 1; the labels name the running build.",
        "sg_partitions_owned": "Partition streams this worker holds the lease of and reads.",
        "sg_rebalances_total": "Changes of the desired partition assignment this worker computed (joins, leaves, expiries).",
        "sg_partition_lease_losses_total": "Partition leases lost while held (not renewed in time, or taken after expiry).",
        "sg_partition_handover_seconds": "From a partition being assigned to this worker to reading it (waiting out the previous owner's shedding).",
        "sg_pool_members": "Live members of the consumer group's pool, as this worker's last heartbeat saw them.",
    ]
}
