import Metrics

/// The partitioned pool's metrics, made once per worker.
struct PartitionMetrics: Sendable {
    let owned = Gauge(label: "sg_partitions_owned")
    let rebalances = Counter(label: "sg_rebalances_total")
    let leaseLosses = Counter(label: "sg_partition_lease_losses_total")
    /// From the moment a partition was assigned here to the moment it is read here.
    let handover = Metrics.Timer(label: "sg_partition_handover_seconds", preferredDisplayUnit: .seconds)
    let members = Gauge(label: "sg_pool_members")
}
