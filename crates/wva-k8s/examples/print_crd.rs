//! Prints the CRD.
fn main() {
    print!("{}", wva_k8s::crd::crd_yaml());
}
