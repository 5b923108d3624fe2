use super::*;

#[test]
fn step_names_are_dagster_names() {
    assert_eq!(op_name("raw.orders"), "raw__orders");
    assert_eq!(op_name("raw.order-items"), "raw__order_items");
    assert_eq!(op_name("marts.café"), "marts__caf_e9");
    assert_eq!(dagster_path("raw.orders"), ["raw", "orders"]);
}
