//! `wva-manager`: the Workload Variant Autoscaler binary.

fn main() {
    println!("wva-manager");
}
