"""Matching Qualytics assets to Atlan assets: one test per rule of docs/matching.md."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from strategies import (
    CONN,
    CONN2,
    SCHEMA,
    a_column,
    a_connection,
    a_schema,
    a_table,
    q_container,
    q_datastore,
    q_field,
    snapshot_of,
)

from qatlan.errors import ConfigError
from qatlan.config import MappingConfig as MappingRule
from qatlan.match import match, resolve_domains
from qatlan.model import ADomain


def reasons(result, level):
    return {s.name: s.reason for s in result.skipped if s.level == level}


def hint_of(result, name):
    return next(s.hint for s in result.skipped if s.name == name)


# ---- datastores


def test_a_datastore_maps_to_the_one_connection_of_its_type_that_has_its_schema():
    m = match(snapshot_of())  # Qualytics says "postgresql", Atlan says "postgres"
    dm = m.datastores[1]
    assert (dm.connection_qn, dm.database, dm.schema, dm.schema_guid) == (CONN, "sales", "public", "s1")
    assert dm.via == "inferred"


def test_a_schema_differing_only_in_case_is_found_when_it_is_unique():
    m = match(snapshot_of(a_schema(f"{CONN}/SALES/PUBLIC")))
    assert (m.datastores[1].database, m.datastores[1].schema) == ("SALES", "PUBLIC")


def test_a_datastore_two_connections_fit_is_ambiguous_and_names_them():
    s = snapshot_of(a_connection(), a_connection(CONN2, name="pg2"), a_schema(),
                    a_schema(f"{CONN2}/sales/public", guid="s2"))
    m = match(s)
    assert reasons(m, "datastore") == {"wh": "ambiguous"}
    assert CONN in hint_of(m, "wh") and CONN2 in hint_of(m, "wh")


def test_a_datastore_no_connection_fits_is_unmapped():
    m = match(snapshot_of(q_datastore(schema="staging")))
    assert reasons(m, "datastore") == {"wh": "unmapped_datastore"}
    assert "add a mapping rule" in hint_of(m, "wh")


def test_a_file_datastore_is_skipped_and_its_containers_carry_the_reason():
    s = snapshot_of(q_datastore(store_type="dfs", connector="s3"), q_container(10, "orders.csv"))
    m = match(s)
    assert reasons(m, "datastore") == {"wh": "file_datastore"}
    skip = m.skipped[-1]
    assert (skip.level, skip.reason, skip.inherited) == ("container", "file_datastore", True)


def test_a_rule_naming_a_connection_the_token_cannot_see_is_not_visible():
    m = match(snapshot_of(), [MappingRule(datastore="wh", connection="default/snowflake/1")])
    assert reasons(m, "datastore") == {"wh": "not_visible"}
    assert "persona" in hint_of(m, "wh")


def test_a_rule_maps_a_datastore_to_its_connection_database_and_schema():
    s = snapshot_of(a_schema(f"{CONN}/analytics/marts"))
    rule = MappingRule(datastore="wh", connection="pg", database="analytics", schema="marts")
    dm = match(s, [rule]).datastores[1]
    assert (dm.schema_qn, dm.via) == (f"{CONN}/analytics/marts", "rule")


def test_a_rule_by_datastore_id_wins_over_a_rule_by_name():
    s = snapshot_of(a_schema(), a_schema(f"{CONN}/sales/other", guid="s2"))
    rules = [MappingRule(datastore="wh", connection=CONN),
             MappingRule(datastore_id=1, connection=CONN, schema="other")]
    assert match(s, rules).datastores[1].schema == "other"


def test_a_mapping_rule_needs_a_connection_and_a_datastore():
    with pytest.raises(ValidationError, match="connection"):
        MappingRule(datastore="wh")
    with pytest.raises(ValidationError, match="datastore"):
        MappingRule(connection=CONN)


def test_two_datastores_on_one_schema_are_ambiguous_unless_a_rule_picks_one():
    s = snapshot_of(q_datastore(1, "wh"), q_datastore(2, "wh_copy"))
    assert reasons(match(s), "datastore") == {"wh": "ambiguous", "wh_copy": "ambiguous"}
    m = match(s, [MappingRule(datastore="wh_copy", connection=CONN)])
    assert list(m.datastores) == [2] and reasons(m, "datastore") == {"wh": "ambiguous"}


# ---- containers


def test_a_container_matches_the_table_of_the_same_name_exactly_first():
    s = snapshot_of(a_table("orders"), a_table("Orders"), q_container(10, "Orders"))
    assert match(s).containers == {10: "t-Orders"}


def test_a_container_matches_case_insensitively_when_only_one_name_fits():
    s = snapshot_of(a_table("ORDERS"), q_container(10, "orders"))
    assert match(s).containers == {10: "t-ORDERS"}


def test_several_case_insensitive_candidates_are_ambiguous():
    s = snapshot_of(a_table("ORDERS"), a_table("Orders"), q_container(10, "orders"))
    m = match(s)
    assert reasons(m, "container") == {"orders": "ambiguous"}
    assert "Table ORDERS" in hint_of(m, "orders") and "Table Orders" in hint_of(m, "orders")


def test_a_table_and_a_view_of_the_same_name_are_ambiguous():
    s = snapshot_of(a_table("orders"), a_table("orders", guid="v1", type_name="View"),
                    q_container(10, "orders"))
    assert reasons(match(s), "container") == {"orders": "ambiguous"}


def test_the_atlan_type_need_not_agree_with_the_container():
    s = snapshot_of(a_table("orders", type_name="MaterialisedView"), q_container(10, "orders"))
    assert match(s).containers == {10: "t-orders"}


def test_an_unmatched_container_gets_the_nearest_atlan_name_as_a_hint():
    s = snapshot_of(a_table("orders_v2"), a_table("customers"), q_container(10, "orders"))
    m = match(s)
    assert reasons(m, "container") == {"orders": "unmatched"}
    assert hint_of(m, "orders") == "nearest: orders_v2"


def test_hints_stay_useful_in_a_schema_with_thousands_of_tables():
    tables = [a_table(f"table_{i:05d}") for i in range(5000)]
    m = match(snapshot_of(*tables, q_container(10, "table_00042_old")))
    assert hint_of(m, "table_00042_old") == "nearest: table_00042"


def test_computed_containers_are_skipped():
    s = snapshot_of(q_container(10, "calc", container_type="computed_join"))
    assert reasons(match(s), "container") == {"calc": "computed"}


def test_only_active_atlan_assets_match():
    s = snapshot_of(a_table("orders", status="DELETED"), q_container(10, "orders"))
    assert reasons(match(s), "container") == {"orders": "unmatched"}


def test_a_table_rename_in_the_rule_wins():
    s = snapshot_of(a_table("orders"), a_table("ORDERS_2024"), q_container(10, "orders"))
    rule = MappingRule(datastore="wh", connection=CONN, tables={"orders": "ORDERS_2024"})
    assert match(s, [rule]).containers == {10: "t-ORDERS_2024"}


def test_two_containers_on_one_table_leave_it_to_the_exact_name():
    s = snapshot_of(a_table("orders"), q_container(10, "orders"), q_container(11, "ORDERS"))
    m = match(s)
    assert m.containers == {10: "t-orders"}
    assert reasons(m, "container") == {"ORDERS": "ambiguous"}


# ---- fields


def test_fields_match_columns_of_the_matched_table_with_the_same_rules():
    t = a_table("orders")
    s = snapshot_of(t, a_column(t, "ID"), a_column(t, "email"), a_column(t, "Email"),
                    q_container(10, "orders"), q_field(1, 10, "id"), q_field(2, 10, "EMAIL"),
                    q_field(3, 10, "note"))
    m = match(s)
    assert m.fields == {1: "t-orders-ID"}
    assert reasons(m, "field") == {"EMAIL": "ambiguous", "note": "unmatched"}


def test_a_column_rename_in_the_rule_wins():
    t = a_table("orders")
    s = snapshot_of(t, a_column(t, "customer_email"), q_container(10, "orders"),
                    q_field(1, 10, "email"))
    rule = MappingRule(datastore="wh", connection=CONN, columns={"orders.email": "customer_email"})
    assert match(s, [rule]).fields == {1: "t-orders-customer_email"}


def test_fields_of_a_skipped_container_carry_its_reason():
    s = snapshot_of(q_container(10, "orders"), q_field(1, 10, "id"))
    skip = next(k for k in match(s).skipped if k.level == "field")
    assert (skip.reason, skip.inherited) == ("unmatched", True)


def test_matched_plus_every_skip_reason_adds_up_to_the_total():
    t = a_table("orders")
    s = snapshot_of(t, a_column(t, "id"), a_table("items"),
                    q_container(10, "orders"), q_container(11, "refunds"),
                    q_container(12, "calc", container_type="computed_table"),
                    q_field(1, 10, "id"), q_field(2, 11, "id"), q_field(3, 10, "x"))
    m = match(s)
    assert m.counts("container") == {"total": 3, "matched": 1, "computed": 1, "unmatched": 1}
    assert m.counts("field") == {"total": 3, "matched": 1, "unmatched": 2}


# ---- domains

SALES = ADomain("d-sales", "default/domain/sales/super", "Sales")
EU = ADomain("d-eu", "default/domain/sales/super/domain/eu", "EU", parent_qn=SALES.qualified_name)
MKT = ADomain("d-mkt", "default/domain/mkt/super", "Marketing")


def test_a_named_domain_includes_its_subdomains():
    s = snapshot_of(SALES, EU, MKT, a_table("orders", domain_guids=("d-eu",)))
    assert resolve_domains(s.domains, ["Sales"], s.assets) == {"d-sales", "d-eu"}
    assert resolve_domains(s.domains, ["d-eu"], s.assets) == {"d-eu"}


def test_a_subdomain_known_only_by_its_qualified_name_and_a_name_in_other_case_resolve():
    partners = ADomain("d-partners", "default/domain/sales/super/domain/ppp", "Partners")  # no parent link
    s = snapshot_of(SALES, EU, partners, MKT)
    assert resolve_domains(s.domains, ["sales"]) == {"d-sales", "d-eu", "d-partners"}
    assert resolve_domains(s.domains, ["d-eu", "Marketing"]) == {"d-eu", "d-mkt"}


def test_an_unknown_domain_name_is_an_error():
    s = snapshot_of(SALES)
    with pytest.raises(ConfigError, match="'Finance' not found"):
        resolve_domains(s.domains, ["Finance"], s.assets)


def test_a_domain_name_several_domains_share_asks_for_the_guid():
    other = ADomain("d-sales-2", "default/domain/other/super", "Sales")
    s = snapshot_of(SALES, other)
    with pytest.raises(ConfigError) as info:
        resolve_domains(s.domains, ["Sales"])
    assert "d-sales-2" in info.value.hint and "GUID" in info.value.hint


def test_a_domain_without_any_asset_is_an_error_not_an_empty_sync():
    s = snapshot_of(SALES, MKT, a_table("orders", domain_guids=("d-sales",)))
    with pytest.raises(ConfigError, match="holds no asset"):
        resolve_domains(s.domains, ["Marketing"], s.assets)


def test_a_table_outside_the_domains_is_skipped_with_its_fields():
    t = a_table("orders", domain_guids=("d-mkt",))
    s = snapshot_of(SALES, MKT, t, a_column(t, "id"), q_container(10, "orders"),
                    q_field(1, 10, "id"))
    m = match(s, (), frozenset({"d-sales"}))
    assert reasons(m, "container") == {"orders": "outside_domains"}
    assert reasons(m, "field") == {"id": "outside_domains"}


def test_columns_follow_their_table_into_the_domains():
    t = a_table("orders", domain_guids=("d-eu",))
    s = snapshot_of(t, a_column(t, "id"), q_container(10, "orders"), q_field(1, 10, "id"))
    assert match(s, (), frozenset({"d-sales", "d-eu"})).fields == {1: "t-orders-id"}


def test_a_schema_outside_the_domains_keeps_its_tables_but_not_its_own_sync():
    s = snapshot_of(a_schema(domain_guids=("d-mkt",)), a_table("orders", domain_guids=("d-sales",)),
                    q_container(10, "orders"))
    m = match(s, (), frozenset({"d-sales"}))
    assert m.datastores[1].schema_in_scope is False
    assert m.containers == {10: "t-orders"}
    assert SCHEMA == m.datastores[1].schema_qn
