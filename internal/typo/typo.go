// Package typo finds the known name a misspelt one was meant to be, for "did you mean" hints.
package typo

// Closest returns the name of known nearest to name when at most maxDist edits away, else "".
func Closest(name string, known []string, maxDist int) string {
	best, bestDist := "", maxDist+1
	for _, k := range known {
		if d := Distance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// maxLen bounds the work on hostile input: a long name is no typo of a short one.
const maxLen = 64

// Distance is the edit distance of a and b (insertions, deletions, substitutions, and swaps of
// neighbours, each costing one); maxLen when either is longer than that.
func Distance(a, b string) int {
	if len(a) > maxLen || len(b) > maxLen {
		return maxLen
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
