//! The README's API tables are generated from the broker's tables of supported versions
//! and emulated releases.

#[test]
fn readme_api_table_matches_the_code() {
    let readme = include_str!("../README.md");
    let start = "<!-- api-table:start -->\n";
    let end = "<!-- api-table:end -->";
    let from = readme.find(start).expect("start marker") + start.len();
    let to = readme.find(end).expect("end marker");
    let expected = agentbus_broker::supported_table_markdown();
    assert_eq!(
        &readme[from..to],
        expected,
        "README.md's API table is stale; replace it with:\n{expected}"
    );
}

#[test]
fn readme_release_table_matches_the_code() {
    let readme = include_str!("../README.md");
    let start = "<!-- releases-table:start -->\n";
    let end = "<!-- releases-table:end -->";
    let from = readme.find(start).expect("start marker") + start.len();
    let to = readme.find(end).expect("end marker");
    let expected = agentbus_broker::releases_table_markdown();
    assert_eq!(
        &readme[from..to],
        expected,
        "README.md's table of emulated releases is stale; replace it with:\n{expected}"
    );
}
