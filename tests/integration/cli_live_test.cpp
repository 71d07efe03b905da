// SPDX-License-Identifier: GPL-2.0-only
// dupcache top, trace and doctor as a user runs them.
