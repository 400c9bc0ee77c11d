//! `ssl.principal.mapping.rules`, as Kafka's SslPrincipalMapper reads them: rules tried in
//! order on a client certificate's distinguished name, the first whose pattern matches
//! the whole name giving the principal's name.
//! `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT` maps `CN=Writer,OU=ServiceUsers,O=x`
//! to `writer`; `DEFAULT` keeps the name as it is. No rule matching is a failed
//! authentication.

use regex::Regex;

#[derive(Debug)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// Compiled mapping rules.
#[derive(Debug)]
pub(crate) struct PrincipalMapper {
    rules: Vec<Rule>,
}

/// Reads up to an unescaped `/`; the text (escapes kept but `\/` made `/`) and the rest.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

impl PrincipalMapper {
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut rest = spec.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let bad = || format!("`{rest}`: expected RULE:pattern/replacement/[L|U]");
                let (pattern, after) = until_slash(after).ok_or_else(bad)?;
                let (replacement, after) = until_slash(after).ok_or_else(bad)?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("`{pattern}`: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement,
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "`{rest}`: a rule is DEFAULT or RULE:pattern/replacement/[L|U]"
                ));
            }
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(Self { rules })
    }

    /// The principal's name for distinguished name `dn`, or none when no rule applies.
    pub(crate) fn map(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                if !pattern.is_match(dn) {
                    return None;
                }
                let name = pattern.replace(dn, replacement.as_str()).into_owned();
                Some(match case {
                    Some('L') => name.to_lowercase(),
                    Some('U') => name.to_uppercase(),
                    _ => name,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_map_as_kafkas_examples_do() {
        let m = PrincipalMapper::parse(
            r"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=Writer,OU=ServiceUsers,O=x").as_deref(),
            Some("writer")
        );
        assert_eq!(m.map("CN=a,OU=b,O=c").as_deref(), Some("a@b"));
        assert_eq!(m.map("CN=plain").as_deref(), Some("CN=plain"));
        let strict = PrincipalMapper::parse(r"RULE:^CN=([^,]*),O=agentbus$/$1/U").unwrap();
        assert_eq!(strict.map("CN=w,O=agentbus").as_deref(), Some("W"));
        assert_eq!(strict.map("CN=w,O=other"), None, "no rule: refused");
        assert!(PrincipalMapper::parse("RULE:(/x").is_err());
        assert!(PrincipalMapper::parse("SOMETHING").is_err());
    }
}
