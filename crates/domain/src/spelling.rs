//! How far apart two spellings are, for "Did you mean …?" and typo correction.

/// Edits (insert, delete, replace a character) that turn `a` into `b`. With `swaps`,
/// exchanging two neighbouring characters counts as one edit ("lonley" is one from
/// "lonely"), as in the optimal string alignment distance.
pub fn edit_distance(a: &str, b: &str, swaps: bool) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if swaps && i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("G31 2ER", "G31 2ER", false), 0);
        assert_eq!(edit_distance("G31 2EX", "G31 2ER", false), 1);
        assert_eq!(edit_distance("kitten", "sitting", false), 3);
        assert_eq!(edit_distance("lonley", "lonely", false), 2);
        assert_eq!(edit_distance("lonley", "lonely", true), 1);
        assert_eq!(edit_distance("", "abc", true), 3);
    }
}
