//! The README's API tables are generated from the broker's tables of supported versions
//! and emulated releases.

/// The README between `<!-- NAME:start -->` and `<!-- NAME:end -->` is `expected`.
fn assert_section(name: &str, expected: &str) {
    let readme = include_str!("../README.md");
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let from = readme.find(&start).expect("start marker") + start.len();
    let to = readme.find(&end).expect("end marker");
    assert_eq!(
        &readme[from..to],
        expected,
        "README.md's {name} is stale; replace it with:\n{expected}"
    );
}

#[test]
fn readme_api_table_matches_the_code() {
    assert_section("api-table", &agentbus_broker::supported_table_markdown());
}

#[test]
fn readme_release_table_matches_the_code() {
    assert_section(
        "releases-table",
        &agentbus_broker::releases_table_markdown(),
    );
}
