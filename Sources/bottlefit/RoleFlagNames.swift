import ArgumentParser
import BottleFitFleet

extension NameSpecification {
    /// The long name a fleet writes into the child's argv (`BottleFitFleet.RoleFlags`): an option
    /// named this way cannot drift from what `bottlefit up` passes.
    static func role(_ flag: RoleFlag) -> NameSpecification { .customLong(flag.name) }
}
