package pool

// waitOrder ranks the waiting jobs by Seq so that a job's queue position
// costs O(log n) in the number of waiting jobs n.
//
// It is a Fenwick tree (binary indexed tree) over a slot array. Each
// waiting job owns one slot, holding 1, and its position is the prefix sum
// up to its slot. Slots are handed out in Seq order: after Start, Submit
// is the only way in and assigns increasing Seqs, and Start adds the
// recovered jobs sorted by Seq. A job that leaves only clears its slot,
// and compact renumbers the remaining slots once most are empty, which
// keeps the arrays within a constant factor of n at O(1) amortised cost
// per removal.
type waitOrder struct {
	// members[i] is the job in slot i+1, or nil once it left.
	members []*activeJob
	// tree is the 1-based Fenwick array over the slots, so tree[0] is
	// unused.
	tree []int32
	// live counts the slots that hold a job.
	live int
}

// add gives j the next slot, after every job added before.
func (o *waitOrder) add(j *activeJob) {
	if len(o.tree) == 0 {
		o.tree = append(o.tree, 0)
	}
	i := len(o.tree)
	// The new node covers the slots (i-lowbit(i), i]. Every slot in it
	// but i itself already exists, so its sum is a difference of two
	// prefix sums.
	low := i - (i & -i)
	o.tree = append(o.tree, int32(o.prefix(i-1)-o.prefix(low)+1))
	o.members = append(o.members, j)
	j.orderSlot = i
	o.live++
}

// remove clears j's slot.
func (o *waitOrder) remove(j *activeJob) {
	i := j.orderSlot
	if i == 0 {
		return
	}
	j.orderSlot = 0
	o.members[i-1] = nil
	for ; i < len(o.tree); i += i & -i {
		o.tree[i]--
	}
	o.live--
	if len(o.members) > 1024 && o.live*4 < len(o.members) {
		o.compact()
	}
}

// position returns j's 1-based rank among the waiting jobs.
func (o *waitOrder) position(j *activeJob) int {
	return o.prefix(j.orderSlot)
}

func (o *waitOrder) prefix(i int) int {
	sum := 0
	for ; i > 0; i -= i & -i {
		sum += int(o.tree[i])
	}
	return sum
}

// compact renumbers the remaining jobs into slots 1..live and rebuilds
// the tree in O(n).
func (o *waitOrder) compact() {
	remaining := o.members[:0]
	for _, j := range o.members {
		if j != nil {
			remaining = append(remaining, j)
		}
	}
	clear(o.members[len(remaining):])
	o.members = remaining
	o.tree = make([]int32, len(remaining)+1)
	for i, j := range remaining {
		j.orderSlot = i + 1
		o.tree[i+1] = 1
	}
	for i := 1; i < len(o.tree); i++ {
		if parent := i + (i & -i); parent < len(o.tree) {
			o.tree[parent] += o.tree[i]
		}
	}
}
